#!/usr/bin/env bash
# `make example`: builds examples/apps/python-app with the example builder,
# every buildpack in its own sandbox, then prints the processes it made.
set -euo pipefail
stockade=${1:-.build/release/stockade}
here=$(cd "$(dirname "$0")" && pwd)
exec "$stockade" build --builder "$here/builder.toml" --path "$here/apps/python-app" --network none
