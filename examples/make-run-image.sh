#!/usr/bin/env bash
# Makes a run image from Debian's busybox-static, now, with GNU tar and
# sha256sum only: an OCI image layout at OUT tagged TAG (default latest).
# Nothing of stockade's own goes into it, so it also checks what stockade
# reads. Usage: make-run-image.sh OUT [TAG] [MARKER]
set -euo pipefail
out=$1
tag=${2:-latest}
marker=${3:-busybox}
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || { echo "make-run-image: $busybox (busybox-static) is missing" >&2; exit 69; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,home/cnb,workspace}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh ash cat echo env ls id printf sleep wget httpd nc mkdir rm true false test grep head sed; do
    ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\ncnb:x:1000:\n' > "$root/etc/group"
printf '%s\n' "$marker" > "$root/etc/run-image"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -cf "$work/layer.tar" -C "$root" .
mkdir -p "$out/blobs/sha256"
blob() { # file → digest hex, moved into the layout
    local hex; hex=$(sha256sum "$1" | cut -d' ' -f1)
    mv "$1" "$out/blobs/sha256/$hex"; echo "$hex"
}
layer_size=$(stat -c %s "$work/layer.tar")
layer=$(blob "$work/layer.tar")
arch=$(dpkg --print-architecture)
printf '{"created":"1970-01-01T00:00:00Z","architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Labels":{"io.stockade.run-image":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"make-run-image.sh busybox-static"}]}' \
    "$arch" "$marker" "$layer" > "$work/config.json"
config_size=$(stat -c %s "$work/config.json")
config=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
manifest_size=$(stat -c %s "$work/manifest.json")
manifest=$(blob "$work/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$tag" > "$out/index.json"
echo "run image $out:$tag (busybox, sha256:${manifest:0:12})"
