#!/usr/bin/env bash
# `make example`: runs examples/hello/hello.sh in a sandbox, with the app
# read-only at /app and a scratch output directory read-write at /out.
set -euo pipefail
stockade=${1:-.build/release/stockade}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
chmod 777 "$out" # writable by the stack user's mapped host id
"$stockade" exec --ro-bind "$here:/app" --bind "$out:/out" --chdir /app -- /app/hello.sh
echo "on the host, $out/result.txt is owned by uid $(stat -c %u "$out/result.txt")"
