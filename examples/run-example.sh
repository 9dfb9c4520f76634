#!/usr/bin/env bash
# `make example`: from source to a running image, with Debian's packages only.
#  1. a run image made now from busybox-static (examples/make-run-image.sh);
#  2. examples/apps/shell-app built by the example builder, every buildpack in
#     its own sandbox, exported as an OCI image layout, with a layer cache;
#  3. the image's default process run in the stockade sandbox.
# Everything goes to $STOCKADE_EXAMPLE_DIR (default: a directory under /tmp),
# which is printed so the image can be inspected (skopeo inspect oci:DIR:TAG).
set -euo pipefail
stockade=${1:-.build/release/stockade}
here=$(cd "$(dirname "$0")" && pwd)
out=${STOCKADE_EXAMPLE_DIR:-${TMPDIR:-/tmp}/stockade-example}
mkdir -p "$out"
[ -f "$out/run-image/index.json" ] || bash "$here/make-run-image.sh" "$out/run-image" latest
"$stockade" build --builder "$here/builder.toml" --path "$here/apps/shell-app" --network none \
    --run-image "$out/run-image:latest" --output "$out/image:shell-app" --cache-dir "$out/cache"
echo "===> RUNNING $out/image:shell-app"
"$stockade" run "$out/image:shell-app"
"$stockade" run "$out/image:shell-app" --process shout -- "built by stockade"
