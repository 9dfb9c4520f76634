#!/usr/bin/env bash
# static-libs.sh [DIR]: makes the directory the release link searches first (Package.swift):
# links to the static archives of libstdc++, libseccomp and libcap, so the release binary
# carries them instead of loading their shared objects. Binding libstdc++'s ~1,700 symbols
# alone cost every `stockade exec` about a millisecond before main (bench/README).
# scripts/check-release-binary.sh fails a link that fell back to the shared libraries.
set -euo pipefail
dir=${1:-.build/static-libs}
mkdir -p "$dir"
for archive in libstdc++.a libseccomp.a libcap.a; do
    path=$(gcc -print-file-name="$archive")
    [ "$path" != "$archive" ] && [ -f "$path" ] || { echo "static-libs.sh: no $archive (install its -dev package)" >&2; exit 1; }
    ln -sfn "$path" "$dir/$archive"
done
