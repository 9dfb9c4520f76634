#!/usr/bin/env bash
# A Debian 12 build image with python3, made now by debootstrap from Debian's
# mirror, as an OCI image layout (one gzip layer) at OUT tagged latest. Kept:
# a second call with OUT already made does nothing, so tests cache it between
# runs. It carries /etc/stockade-build-image, a marker no host has, and the
# CNB_USER_ID/CNB_GROUP_ID a builder's build image declares.
# Usage: debian-build-image.sh OUT [MIRROR]   (exit 69: cannot be made here)
set -euo pipefail
out=$1
mirror=${2:-http://deb.debian.org/debian}
[ -f "$out/index.json" ] && exit 0
command -v debootstrap >/dev/null || { echo "debian-build-image: debootstrap is missing (apt-get install debootstrap)" >&2; exit 69; }
[ "$(id -u)" = 0 ] || { echo "debian-build-image: debootstrap needs root" >&2; exit 69; }
parent=$(dirname "$out")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.debian.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
if ! debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$mirror" >"$work/log" 2>&1; then
    tail -5 "$work/log" >&2
    echo "debian-build-image: debootstrap from $mirror failed" >&2
    exit 69
fi
printf 'debian bookworm build image made by debootstrap\n' > "$root/etc/stockade-build-image"
printf 'cnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' >> "$root/etc/passwd"
printf 'cnb:x:1000:\n' >> "$root/etc/group"
mkdir -p "$root/home/cnb" && chown 1000:1000 "$root/home/cnb"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# Devices, /proc and /sys stay out: the sandbox mounts its own.
tar --sort=name --mtime=@315532801 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
    -cf "$work/layer.tar" -C "$root" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -1 "$work/layer.tar"
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
blob() { local hex; hex=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$layout/blobs/sha256/$hex"; echo "$hex"; }
layer_size=$(stat -c %s "$work/layer.tar.gz")
layer=$(blob "$work/layer.tar.gz")
arch=$(dpkg --print-architecture)
printf '{"created":"1980-01-01T00:00:01Z","architecture":"%s","os":"linux","config":{"User":"1000:1000","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","CNB_USER_ID=1000","CNB_GROUP_ID=1000"],"Labels":{"io.buildpacks.stack.id":"io.stockade.debian.bookworm"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diff_id" > "$work/config.json"
config_size=$(stat -c %s "$work/config.json")
config=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
manifest_size=$(stat -c %s "$work/manifest.json")
manifest=$(blob "$work/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest" "$manifest_size" > "$layout/index.json"
chmod -R a+rX "$layout"
# Whole or not at all: a concurrent or killed run never leaves half an image at OUT.
mv -T "$layout" "$out" 2>/dev/null || [ -f "$out/index.json" ]
echo "build image $out:latest (debian bookworm, sha256:${manifest:0:12})"
