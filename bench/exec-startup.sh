#!/usr/bin/env bash
# Start-up cost of one sandbox: `stockade exec -- /bin/true` against
# bubblewrap with the same isolation and against a plain /bin/true, side by
# side in one hyperfine run, as root and as an unprivileged user.
# Prints the medians and the ratio stockade/bubblewrap. Not a test.
# BASELINE=path/to/an/older/stockade adds it to the same run (before/after).
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$stockade" "$work/stockade"
if [ -n "${BASELINE:-}" ]; then cp "$(realpath "$BASELINE")" "$work/baseline"; fi
# The same default profile for both: stockade compiles it, bwrap loads the BPF.
"$work/stockade" profile compile default --output "$work/default.bpf"
chmod 644 "$work/default.bpf"

# bwrap: user, mount, pid, net, ipc, uts and cgroup namespaces; read-only
# system directories; the /etc files stockade binds; proc, dev, tmp; no
# capabilities; a new session; the same seccomp filter.
etc=""
for f in ld.so.cache ld.so.conf ld.so.conf.d ssl ca-certificates resolv.conf hosts nsswitch.conf; do
    [ -e "/etc/$f" ] && etc+=" --ro-bind /etc/$f /etc/$f"
done
links=""
for d in bin sbin lib lib64; do
    [ -L "/$d" ] && links+=" --symlink $(readlink /$d) /$d"
done
bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL --ro-bind /usr /usr$links$etc --proc /proc --dev /dev --tmpfs /tmp --seccomp 3 /bin/true 3<$work/default.bpf"
stockade_cmd="$work/stockade exec -- /bin/true"

# The runs come in ROUNDS rounds (default 10), the commands one after another in each: a
# drift of this shared VM lasting a few seconds then lands on every column, not on one.
rounds=${ROUNDS:-10}
bench() { # label, prefix
    local label=$1 prefix=$2
    echo "== $label"
    for round in $(seq "$rounds"); do
        hyperfine --style basic --warmup "$([ "$round" = 1 ] && echo 30 || echo 3)" \
            --runs "$(( (runs + rounds - 1) / rounds ))" --export-json "$work/$label.$round.json" \
            -n plain "$prefix /bin/true" \
            -n bubblewrap "$prefix $bwrap_cmd" \
            -n stockade "$prefix $stockade_cmd" \
            ${BASELINE:+-n baseline "$prefix $work/baseline exec -- /bin/true"} >/dev/null 2>&1
    done
    python3 - "$label" "$work/$label".*.json <<'PY'
import json, statistics, sys
times = {}
for path in sys.argv[2:]:
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
# Under load hyperfine's shell correction can leave a median of 0 for /bin/true.
ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if med[b] > 0 else "n/a"
line = (f"{sys.argv[1]}: plain {med['plain']:.2f} ms, bubblewrap {med['bubblewrap']:.2f} ms, "
        f"stockade {med['stockade']:.2f} ms; stockade/bubblewrap = {ratio('stockade', 'bubblewrap')}, "
        f"stockade/plain = {ratio('stockade', 'plain')}")
if "baseline" in med:
    line += (f"; baseline {med['baseline']:.2f} ms, baseline/bubblewrap = {ratio('baseline', 'bubblewrap')}, "
             f"stockade/baseline = {ratio('stockade', 'baseline')}")
print(line)
PY
}

if [ "$(id -u)" -eq 0 ]; then
    bench root ""
    # The recommended shared-host set-up: a user with a home (for the filter
    # cache) and a subordinate id range (newuidmap).
    user=stockade-bench
    if ! id "$user" >/dev/null 2>&1; then
        useradd --create-home --shell /usr/sbin/nologin "$user"
        grep -q "^$user:" /etc/subuid || usermod --add-subuids 400000000-400065535 --add-subgids 400000000-400065535 "$user"
    fi
    bench "unprivileged-subuid" "setpriv --reuid=$user --regid=$user --init-groups --reset-env --"
    # Like bubblewrap: the stack user is the invoking user itself, no helpers.
    solo=stockade-bench-solo
    id "$solo" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$solo"
    sed -i "/^$solo:/d" /etc/subuid /etc/subgid
    bench "unprivileged-single-id" "setpriv --reuid=$solo --regid=$solo --init-groups --reset-env --"
else
    bench "$(id -un)" ""
fi
