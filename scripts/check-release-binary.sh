#!/usr/bin/env bash
# check-release-binary.sh BINARY: fails (`make build`) when the release link lost what it is for:
# - it loads only glibc and libzstd (a link that fell back to the shared libstdc++, libseccomp
#   or libcap, each about a millisecond of every start: scripts/static-libs.sh);
# - it is a PIE, with full RELRO (PT_GNU_RELRO and BIND_NOW), and `.rodata` is not writable
#   (scripts/release-link.ld): the supervisor's C libraries parse hostile input.
set -euo pipefail
binary=$1
fail() { echo "check-release-binary.sh: $binary $*" >&2; exit 1; }
[ -f "$binary" ] || fail "does not exist"
extra=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
    grep -Ev '^(libc\.so\.6|libm\.so\.6|libzstd\.so\.1|ld-linux[-a-z0-9_]*\.so\.[0-9]+)$' || true)
[ -z "$extra" ] || fail "loads $(echo $extra) (expected only glibc and libzstd)"
readelf -h "$binary" | grep -q 'Type:.*DYN' || fail "is not position-independent"
readelf -lW "$binary" | grep -q '^ *GNU_RELRO ' || fail "has no PT_GNU_RELRO (RELRO)"
readelf -dW "$binary" | grep -Eq '\((FLAGS|FLAGS_1)\).*\bNOW\b' || fail "is not linked with BIND_NOW (-z now)"
# The flags are the fourth field from the end: Flg Lk Inf Al.
rodata=$(readelf -SW "$binary" | awk '$0 ~ /\] \.rodata +PROGBITS/ { print $(NF - 3) }')
[ -n "$rodata" ] || fail "has no .rodata to check"
case $rodata in *W*) fail "has a writable .rodata (flags $rodata)" ;; esac
readelf -lW "$binary" | awk '$1 == "LOAD" && $7 ~ /W/ && $7 ~ /E/ { exit 1 }' || fail "has a segment both writable and executable"
