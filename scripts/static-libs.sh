#!/usr/bin/env bash
# static-libs.sh [DIR]: makes the directory the release link searches first (Package.swift):
# links to the static archives of libstdc++, libseccomp and libcap, so the release binary
# carries them instead of loading their shared objects. Binding libstdc++'s ~1,700 symbols
# alone cost every `stockade exec` about a millisecond before main (bench/README).
# static-libs.sh --check BINARY: fails unless BINARY loads only glibc and libzstd, so a
# link that fell back to the shared libraries does not pass unnoticed (`make build`).
set -euo pipefail
if [ "${1:-}" = "--check" ]; then
    extra=$(readelf -d "$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
        grep -Ev '^(libc\.so\.6|libm\.so\.6|libzstd\.so\.1|ld-linux[-a-z0-9_]*\.so\.[0-9]+)$' || true)
    [ -z "$extra" ] || { echo "static-libs.sh: $2 loads $(echo $extra) (expected only glibc and libzstd)" >&2; exit 1; }
    exit 0
fi
dir=${1:-.build/static-libs}
mkdir -p "$dir"
for archive in libstdc++.a libseccomp.a libcap.a; do
    path=$(gcc -print-file-name="$archive")
    [ "$path" != "$archive" ] && [ -f "$path" ] || { echo "static-libs.sh: no $archive (install its -dev package)" >&2; exit 1; }
    ln -sfn "$path" "$dir/$archive"
done
