#!/usr/bin/env bash
# The audit's cost per observed call: python opens one file for writing N
# times (each an observed openat, so one notification each) inside a sandbox,
# timing the loop itself so that the sandbox's start-up is left out; the same
# loop with opens for reading (never observed) is the control. Unaudited,
# audited (default set) and learn mode, interleaved ROUNDS times so a loaded
# machine slows each alike; prints the median microseconds per call and the
# added cost of each mode. BASELINE=path/to/an/older/stockade adds its rows.
# Not a test.
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
calls=${CALLS:-5000}
rounds=${ROUNDS:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 777 "$work"
cat > "$work/loop.py" <<'PY'
import os, sys, time
calls, mode = int(sys.argv[1]), sys.argv[2]
flags = os.O_WRONLY | os.O_CREAT if mode == "write" else os.O_RDONLY
os.close(os.open("/w/f", os.O_WRONLY | os.O_CREAT, 0o666))
start = time.perf_counter()
for _ in range(calls):
    os.close(os.open("/w/f", flags))
print((time.perf_counter() - start) / calls * 1e6)
PY
python3 - "$stockade" "${BASELINE:+$(realpath "$BASELINE")}" "$work" "$calls" "$rounds" <<'PY'
import statistics, subprocess, sys
stockade, baseline, work, calls, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
bins = [("", stockade)] + ([("baseline ", baseline)] if baseline else [])
modes = {
    "unaudited": lambda b: [b, "exec"],
    "audited": lambda b: [b, "exec", "--audit", f"{work}/events.jsonl"],
    "learn": lambda b: [b, "profile", "learn", "--output", f"{work}/learned.json"],
}
times = {}
for _ in range(rounds):
    for prefix, binary in bins:
        for mode, command in modes.items():
            for kind in ["write", "read"]:
                argv = command(binary) + ["--bind", f"{work}:/w", "--", "python3", "/w/loop.py", calls, kind]
                out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
                times.setdefault((prefix, mode, kind), []).append(float(out.split()[-1]))
for prefix, _ in bins:
    base = statistics.median(times[(prefix, "unaudited", "write")])
    for mode in modes:
        write = statistics.median(times[(prefix, mode, "write")])
        read = statistics.median(times[(prefix, mode, "read")])
        print(f"{prefix + mode:20} open for writing {write:7.2f} us (+{write - base:6.2f})   for reading {read:7.2f} us")
PY
