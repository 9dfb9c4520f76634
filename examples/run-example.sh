#!/usr/bin/env bash
# `make example`: from source to a running image, with Debian's packages only.
#  1. a run image made now from busybox-static (examples/make-run-image.sh);
#  2. a builder image made by `stockade builder create` from the example
#     buildpacks, with that busybox image as its build image and run image;
#  3. examples/apps/shell-app built with the builder image (unpacked once into
#     a store), every buildpack in its own sandbox, exported as an OCI image
#     layout on the builder's run image, with a layer cache;
#  4. the image's default process run in the stockade sandbox.
# Everything goes to $STOCKADE_EXAMPLE_DIR (default: a directory under /tmp),
# which is printed so the image can be inspected (skopeo inspect oci:DIR:TAG).
set -euo pipefail
stockade=${1:-.build/release/stockade}
here=$(cd "$(dirname "$0")" && pwd)
out=${STOCKADE_EXAMPLE_DIR:-${TMPDIR:-/tmp}/stockade-example}
mkdir -p "$out"
[ -f "$out/run-image/index.json" ] || bash "$here/make-run-image.sh" "$out/run-image" latest
# The example builder.toml's buildpacks, with a build image and a run image.
{
    printf 'description = "Stockade example builder (busybox)"\n'
    for bp in shell python labeller app-meta greeting-provider greeting-consumer; do
        printf '[[buildpacks]]\nuri = "%s"\n' "$here/buildpacks/$bp"
    done
    sed -n '/^\[\[order\]\]/,$p' "$here/builder.toml"
    printf '[build]\nimage = "oci:%s:latest"\n' "$out/run-image"
    printf '[[run.images]]\nimage = "oci:%s:latest"\n' "$out/run-image"
} > "$out/builder.toml"
"$stockade" builder create "oci:$out/builder:latest" --config "$out/builder.toml"
"$stockade" build --builder "oci:$out/builder:latest" --store "$out/store" --path "$here/apps/shell-app" \
    --network none --output "oci:$out/image:shell-app" --cache-dir "$out/cache"
echo "===> RUNNING $out/image:shell-app"
"$stockade" run "$out/image:shell-app"
"$stockade" run "$out/image:shell-app" --process shout -- "built by stockade"
