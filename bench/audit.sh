#!/usr/bin/env bash
# The cost of the syscall audit on a syscall-heavy workload: untar a tree of
# 20,000 small files and `find` over it, in a sandbox unaudited, audited with
# the default observed set, in learn mode (every syscall observed), and the
# same workload under `strace -f -c` as the reference a user would otherwise
# reach for. Prints medians and ratios to the unaudited run. Not a test.
# BASELINE=path/to/an/older/stockade adds its three sandboxed rows to the same
# run (before/after); STRACE=0 leaves the (slow) strace row out.
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 777 "$work"
mkdir -p "$work/tree"
python3 - "$work/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(200):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}.txt", "w") as out:
            out.write(f"file {d} {f}\n")
PY
tar -C "$work" -cf "$work/tree.tar" tree
rm -rf "$work/tree"
chmod 644 "$work/tree.tar"
workload='rm -rf /w/out && mkdir /w/out && tar -xf /w/tree.tar -C /w/out && find /w/out | wc -l'
rows=()
for which in stockade ${BASELINE:+baseline}; do
    if [ "$which" = stockade ]; then bin=$stockade prefix=""; else bin=$(realpath "$BASELINE") prefix="baseline "; fi
    rows+=(-n "${prefix}unaudited" "$bin exec --bind $work:/w --chdir /w -- /bin/sh -c '$workload'"
           -n "${prefix}audited" "$bin exec --bind $work:/w --chdir /w --audit $work/${prefix// /-}events.jsonl -- /bin/sh -c '$workload'"
           -n "${prefix}learn" "$bin profile learn --output $work/learned.json --bind $work:/w --chdir /w -- /bin/sh -c '$workload'")
done
[ "${STRACE:-1}" = 0 ] || rows+=(-n "strace -f -c" "strace -f -c -o /dev/null /bin/sh -c '${workload//\/w/$work}'")

hyperfine --style basic --warmup 2 --runs "$runs" --export-json "$work/audit.json" "${rows[@]}" >/dev/null
python3 - "$work/audit.json" "$work/events.jsonl" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
for prefix in ["", "baseline "]:
    if prefix + "unaudited" not in med: continue
    base = med[prefix + "unaudited"]
    for name in ["unaudited", "audited", "learn"] + (["strace -f -c"] if not prefix else []):
        if prefix + name in med:
            print(f"{prefix + name:23} {med[prefix + name]:8.0f} ms  {med[prefix + name] / base:5.2f}x")
lines = sum(1 for _ in open(sys.argv[2]))
print(f"audit events written in all runs: {lines}")
PY
