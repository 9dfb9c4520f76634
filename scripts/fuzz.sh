#!/usr/bin/env bash
# libFuzzer targets over what Stockade parses from untrusted hands (Fuzz/<target>/main.swift).
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     build, then fuzz each target for SECONDS (default 25)
#   scripts/fuzz.sh TARGET run FILE...         build, then run the target once over FILEs (a crash's input)
# Targets are compiled with swiftc directly from the modules' sources, instrumented for
# libFuzzer and AddressSanitizer, into .build-fuzz/: the normal `swift build` is untouched.
# Seeds come from Fuzz/corpus/<target>/, tokens from Fuzz/<target>/dict; what the fuzzer finds goes to .build-fuzz/corpus/<target>/
# and a crashing input to .build-fuzz/artifacts/<target>/. Exit status: non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
OUT=${FUZZ_OUT:-.build-fuzz}
# swift-system's sources, as `swift package resolve` checks them out.
SYSTEM=.build/checkouts/swift-system/Sources
[[ -d $SYSTEM ]] || "$(dirname "$SWIFTC")/swift" package resolve >&2
ALL=(toml json seccomp oci-documents oci-layer terminal)

# Each target: the modules it needs, in dependency order, and what it links.
modules() {
    case "$1" in
        toml) echo SystemPackage SystemCalls TextEncoding BuildpackSpec ;;
        json) echo TextEncoding JSON ;;
        seccomp) echo SystemPackage SystemCalls TextEncoding JSON Seccomp ;;
        oci-documents|oci-layer) echo SystemPackage SystemCalls TextEncoding JSON CrashSafety OCI ;;
        terminal) echo TerminalText ;;
        *) echo "fuzz.sh: no target $1 (targets: ${ALL[*]})" >&2; exit 2 ;;
    esac
}
libraries() {
    case "$1" in
        seccomp) echo -lseccomp ;;
        oci-documents|oci-layer) echo -larchive -lz -l:libzstd.so.1 ;;
    esac
}

FLAGS=(-swift-version 6 -O -sanitize=fuzzer,address -parse-as-library -I "$OUT/modules"
       -I Sources/CSeccomp -I Sources/CArchive -I Sources/CLinux -I "$SYSTEM/CSystem/include")

# The ld.gold that swiftc picks warns about every ASan symbol; those lines are noise.
quiet() {
    local status=0
    "$@" 2> "$OUT/compiler.log" || status=$?
    grep -v -e 'warning: Cannot export local symbol' -e '^$' "$OUT/compiler.log" >&2 || true
    return $status
}

# swift-system (SystemPackage) from SwiftPM's checkout, built with the settings of its Package.swift.
module_directory() { if [[ $1 == SystemPackage ]]; then echo "$SYSTEM/System"; else echo "Sources/$1"; fi; }
module_flags() { if [[ $1 == SystemPackage ]]; then echo -swift-version 5 -DSYSTEM_PACKAGE -enable-experimental-feature Lifetimes; fi; }

build_module() {
    local name=$1 object="$OUT/modules/$1.o" directory; directory=$(module_directory "$1")
    local sources; sources=$(find "$directory" -name '*.swift' | sort)
    # Rebuilt only when a source is newer than the object.
    if [[ -f $object ]] && [[ -z $(find "$directory" -name '*.swift' -newer "$object") ]]; then return; fi
    echo "fuzz.sh: compiling $name" >&2
    # shellcheck disable=SC2086,SC2046
    quiet "$SWIFTC" "${FLAGS[@]}" $(module_flags "$name") -wmo -module-name "$name" -emit-module \
        -emit-module-path "$OUT/modules/$name.swiftmodule" -c $sources -o "$object"
    # Its C shims (dup3, pipe2, ...), which its Swift calls.
    if [[ $name == SystemPackage ]]; then
        quiet "$(dirname "$SWIFTC")/clang" -O1 -fsanitize=fuzzer-no-link,address -I "$SYSTEM/CSystem/include" \
            -c "$SYSTEM/CSystem/shims.c" -o "$OUT/modules/CSystem.o"
    fi
}

build_target() {
    local target=$1 objects=()
    mkdir -p "$OUT/modules"
    for module in $(modules "$target"); do
        build_module "$module"
        objects+=("$OUT/modules/$module.o")
        if [[ $module == SystemPackage ]]; then objects+=("$OUT/modules/CSystem.o"); fi
    done
    local binary="$OUT/$target" entry="Fuzz/$target/main.swift"
    if [[ -x $binary && $binary -nt $entry ]] && [[ -z $(find "${objects[@]}" -newer "$binary") ]]; then return; fi
    echo "fuzz.sh: linking $target" >&2
    # shellcheck disable=SC2046
    quiet "$SWIFTC" "${FLAGS[@]}" -module-name "Fuzz_${target//-/_}" "$entry" "${objects[@]}" $(libraries "$target") -o "$binary"
}

fuzz_target() {
    local target=$1 seconds=$2
    mkdir -p "$OUT/corpus/$target" "$OUT/artifacts/$target"
    local dictionary=()
    [[ -f Fuzz/$target/dict ]] && dictionary=(-dict="Fuzz/$target/dict")
    echo "fuzz.sh: fuzzing $target for ${seconds}s" >&2
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a leak or an unbounded read.
    if ! "$OUT/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$target/" "${dictionary[@]}" \
        "$OUT/corpus/$target" "Fuzz/corpus/$target" 2> "$OUT/$target.log"; then
        tail -n 40 "$OUT/$target.log" >&2
        echo "fuzz.sh: $target FAILED; input in $OUT/artifacts/$target/" >&2
        return 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|^#[0-9]+.*DONE' "$OUT/$target.log" \
        | sed "s/^/$target: /" >&2
}

target=${1:-all}
if [[ ${2:-} == run ]]; then
    build_target "$target"
    shift 2
    exec "$OUT/$target" "$@"
fi
seconds=${2:-25}
targets=("${ALL[@]}")
[[ $target == all ]] || targets=("$target")
for t in "${targets[@]}"; do build_target "$t"; done
status=0
for t in "${targets[@]}"; do fuzz_target "$t" "$seconds" || status=1; done
exit $status
