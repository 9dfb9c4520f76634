#!/usr/bin/env bash
# The cost of the syscall audit on a syscall-heavy workload: untar a tree of
# 20,000 small files and `find` over it, in a sandbox unaudited, audited with
# the default observed set, in learn mode (every syscall observed), and the
# same workload under `strace -f -c` as the reference a user would otherwise
# reach for. Prints medians and ratios to the unaudited run. Not a test.
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
sandbox="$stockade exec --bind $work:/w --chdir /w"

hyperfine --style basic --warmup 2 --runs "$runs" --export-json "$work/audit.json" \
    -n unaudited "$sandbox -- /bin/sh -c '$workload'" \
    -n audited "$sandbox --audit $work/events.jsonl -- /bin/sh -c '$workload'" \
    -n learn "$stockade profile learn --output $work/learned.json --bind $work:/w --chdir /w -- /bin/sh -c '$workload'" \
    -n "strace -f -c" "strace -f -c -o /dev/null /bin/sh -c '${workload//\/w/$work}'" >/dev/null
python3 - "$work/audit.json" "$work/events.jsonl" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
base = med["unaudited"]
for name in ["unaudited", "audited", "learn", "strace -f -c"]:
    print(f"{name:14} {med[name]:8.0f} ms  {med[name] / base:5.2f}x")
lines = sum(1 for _ in open(sys.argv[2]))
print(f"audit events written in all runs: {lines}")
PY
