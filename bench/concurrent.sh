#!/usr/bin/env bash
# Many builds at once: 20 `stockade build`s of the shell example (examples/builder.toml,
# no network, each with its own --output and --cache-dir) started together, 10 as each of two
# users with a subordinate id range of their own, against one build alone. Checks that every
# build passed, that no two shared a temporary directory, an image or a cache, that each
# user's files carry its own range's ids, and that nothing is left running or in TMPDIR.
# Prints builds per minute, p50/p99 wall time and the supervisor's peak RSS, with ratios to
# one build alone. Not a test. Run as root (it creates the two users).
#
# BENCH_DIR: where the work goes (default /var/tmp). RUNS: builds alone, one after another
# (default 5). BUILDS: concurrent builds (default 20, half per user).
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-5}
builds=${BUILDS:-20}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "concurrent.sh: run as root (it creates two bench users)" >&2; exit 1; }
[ -x "$(dirname "$stockade")/stockade-launcher" ] ||
    { echo "concurrent.sh: no stockade-launcher beside $stockade" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "concurrent.sh: /usr/bin/time is missing (Debian: time)" >&2; exit 1; }

# Two users, each with a range of its own, far from useradd's allocations and the tests' 300000000.
users=(stockade-bench1 stockade-bench2)
starts=(310000000 310065536)
for i in 0 1; do
    u=${users[$i]} s=${starts[$i]}
    id -u "$u" >/dev/null 2>&1 ||
        useradd --no-create-home --shell /usr/sbin/nologin -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$u"
    if [ "$(grep "^$u:" /etc/subuid)" != "$u:$s:65536" ] || [ "$(grep "^$u:" /etc/subgid)" != "$u:$s:65536" ]; then
        sed -i "/^$u:/d" /etc/subuid /etc/subgid
        usermod --add-subuids "$s-$((s + 65535))" --add-subgids "$s-$((s + 65535))" "$u"
    fi
done

base=${BENCH_DIR:-/var/tmp}
work=$(mktemp -d "$base/stockade-concurrent.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# The checkout may sit where the bench users cannot go: a readable copy of what they run.
mkdir "$work/bin"
cp "$stockade" "$(dirname "$stockade")/stockade-launcher" "$work/bin/"
cp -R "$repo/examples" "$work/examples"
chmod -R a+rX "$work/bin" "$work/examples"

# build USER NAME [args]: one build as USER into $work/NAME, timed; its TMPDIR is the user's.
build() {
    local user=$1 name=$2
    shift 2
    mkdir -p "$work/$name"
    chown "$user" "$work/$name"
    TMPDIR=$work/tmp-$user /usr/bin/time -f '%e %M' -o "$work/$name/time" \
        setpriv --reuid="$user" --regid="$user" --clear-groups -- \
        "$work/bin/stockade" build --builder "$work/examples/builder.toml" --path "$work/examples/apps/shell-app" \
        --network none --output "$work/$name/image:app" --cache-dir "$work/$name/cache" --keep-layers "$@" \
        >"$work/$name/log" 2>&1
}
for u in "${users[@]}"; do mkdir -p "$work/tmp-$u"; chown "$u" "$work/tmp-$u"; done

# calc EXPR [DECIMALS]
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'; }

echo "one build alone, $runs times, as ${users[0]}"
build "${users[0]}" warm
for i in $(seq "$runs"); do build "${users[0]}" "alone-$i"; done
alone_p50=$(for i in $(seq "$runs"); do cut -d' ' -f1 "$work/alone-$i/time"; done | percentile 50)
alone_rss=$(for i in $(seq "$runs"); do cut -d' ' -f2 "$work/alone-$i/time"; done | percentile 50)
for name in warm $(seq -f 'alone-%g' "$runs"); do
    rm -rf "$(dirname "$(sed -n 's/^layers kept in //p' "$work/$name/log")")"  # --keep-layers keeps its scratch directory
done

echo "$builds builds at once, half as each user"
start=$(date +%s.%N)
pids=()
for i in $(seq "$builds"); do
    build "${users[$((i % 2))]}" "many-$i" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
elapsed=$(calc "$(date +%s.%N) - $start" 3)

# Checks: all passed; distinct temporary directories, images and caches; each user's ids.
problems=0
fail() { echo "FAIL: $*" >&2; problems=$((problems + 1)); }
[ "$failed" = 0 ] || fail "$failed of $builds builds failed (see $work/many-*/log)"
kept=()
for i in $(seq "$builds"); do
    d=$work/many-$i
    grep -q "Image $d/image:app sha256:" "$d/log" || fail "many-$i: no image"
    grep -q "Cache saved to $d/cache" "$d/log" || fail "many-$i: no cache"
    skopeo inspect "oci:$d/image:app" >/dev/null || fail "many-$i: skopeo cannot read the image"
    layers=$(sed -n 's/^layers kept in //p' "$d/log")
    kept+=("$layers")
    [ -d "$layers" ] || { fail "many-$i: no layers kept"; continue; }
    user=${users[$((i % 2))]}
    want=$(( ${starts[$((i % 2))]} + 1000 ))
    # What the buildpack wrote is the user's range's stack uid; the rest, the user's own.
    owners=$(find "$layers" -printf '%U\n' | sort -u | tr '\n' ' ')
    [ "$owners" = "$(printf '%s\n' "$(id -u "$user")" "$want" | sort -u | tr '\n' ' ')" ] ||
        fail "many-$i ($user): layers owned by $owners, not $(id -u "$user") and $want"
done
[ "$(printf '%s\n' "${kept[@]}" | sort -u | wc -l)" = "$builds" ] || fail "two builds shared a temporary directory"
for layers in "${kept[@]}"; do rm -rf "$(dirname "$layers")"; done
for u in "${users[@]}"; do
    left=$(ls -A "$work/tmp-$u")
    [ -z "$left" ] || fail "left in $u's TMPDIR: $left"
    # An exited janitor waits for the host's pid 1 to reap it (lazily, in some containers): not running.
    running=$(ps -u "$u" -o pid=,stat=,args= | awk '$2 !~ /^Z/')
    [ -z "$running" ] || fail "processes of $u still running: $running"
done
[ "$problems" = 0 ] || exit 1

p50=$(for i in $(seq "$builds"); do cut -d' ' -f1 "$work/many-$i/time"; done | percentile 50)
p99=$(for i in $(seq "$builds"); do cut -d' ' -f1 "$work/many-$i/time"; done | percentile 99)
rss=$(for i in $(seq "$builds"); do cut -d' ' -f2 "$work/many-$i/time"; done | percentile 100)
per_minute=$(calc "$builds * 60 / $elapsed" 1)
alone_per_minute=$(calc "60 / $alone_p50" 1)
echo
echo "all $builds builds passed; temporary directories, images and caches distinct; ids per user right; nothing left"
printf '| | builds/min | p50 wall | p99 wall | peak RSS |\n|---|---:|---:|---:|---:|\n'
printf '| one alone (%s runs) | %s | %s s | | %s MiB |\n' "$runs" "$alone_per_minute" "$alone_p50" "$((alone_rss / 1024))"
printf '| %s at once | %s | %s s | %s s | %s MiB |\n' "$builds" "$per_minute" "$p50" "$p99" "$((rss / 1024))"
printf 'ratios to one alone: builds/min %s, p50 %s, p99 %s, peak RSS %s\n' \
    "$(calc "$per_minute / $alone_per_minute")" "$(calc "$p50 / $alone_p50")" \
    "$(calc "$p99 / $alone_p50")" "$(calc "$rss / $alone_rss")"
