#!/usr/bin/env bash
# Detection of one group of 100 trivial optional buildpacks (half pass, half
# exit 100): `stockade detect`, each bin/detect in its own sandbox, several at
# once, against a plain shell loop running the same scripts unsandboxed.
# The peer: a bubblewrap sandbox per bin/detect, as many at once. Prints the
# medians and the ratios. Not a test.
# BASELINE=path/to/an/older/stockade adds it to the same run (before/after).
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/buildpacks" "$work/app" "$work/platform/env" "$work/plans"
{
    echo "[[order]]"
    for i in $(seq -w 0 99); do
        id="bench/bp-$i"
        dir="$work/buildpacks/bench_bp-$i/0.0.1"
        mkdir -p "$dir/bin"
        printf 'api = "0.10"\n[buildpack]\nid = "%s"\nversion = "0.0.1"\n' "$id" > "$dir/buildpack.toml"
        if [ $((10#$i % 2)) -eq 0 ]; then code=0; else code=100; fi
        printf '#!/bin/sh\nexit %s\n' "$code" > "$dir/bin/detect"
        printf '#!/bin/sh\nexit 0\n' > "$dir/bin/build"
        chmod 755 "$dir/bin/detect" "$dir/bin/build"
        printf '[[order.group]]\nid = "%s"\nversion = "0.0.1"\noptional = true\n' "$id"
    done
} > "$work/order.toml"
cat > "$work/loop.sh" <<LOOP
#!/bin/sh
# What a lifecycle without sandboxes does: each bin/detect, one after another.
for dir in $work/buildpacks/*/0.0.1; do
    : > $work/plans/plan.toml
    (cd $work/app && CNB_BUILDPACK_DIR=\$dir CNB_PLATFORM_DIR=$work/platform CNB_BUILD_PLAN_PATH=$work/plans/plan.toml \
        "\$dir/bin/detect" $work/platform $work/plans/plan.toml) || [ \$? -eq 100 ]
done
LOOP
chmod 755 "$work/loop.sh"
"$stockade" detect --buildpacks-dir "$work/buildpacks" --order "$work/order.toml" --path "$work/app" >/dev/null

# The peer: one bubblewrap sandbox per bin/detect, as many at once as stockade runs (one per
# core), each as exec-startup.sh isolates /bin/true (every namespace, read-only system
# directories, proc, dev, tmp, no capabilities, a new session) with stockade's detect profile
# (strict) as its filter; the buildpack, app and platform read-only, the plan writable.
# make runs a recipe without metacharacters without a shell; `-` ignores exit 100.
"$stockade" profile compile strict --output "$work/strict.bpf"
etc=""
for f in ld.so.cache ld.so.conf ld.so.conf.d ssl ca-certificates resolv.conf hosts nsswitch.conf; do
    [ -e "/etc/$f" ] && etc+=" --ro-bind /etc/$f /etc/$f"
done
links=""
for d in bin sbin lib lib64; do
    [ -L "/$d" ] && links+=" --symlink $(readlink /$d) /$d"
done
{
    echo "all: $(seq -s ' ' -f 'bp%03g' 0 99)"
    for i in $(seq -w 0 99); do
        mkdir -p "$work/plans/$i"
        printf 'bp%03d:\n\t-bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL --ro-bind /usr /usr%s%s --proc /proc --dev /dev --tmpfs /tmp --ro-bind %s /cnb/buildpack --ro-bind %s /workspace --ro-bind %s /platform --bind %s /plans --chdir /workspace --setenv CNB_BUILDPACK_DIR /cnb/buildpack --setenv CNB_PLATFORM_DIR /platform --setenv CNB_BUILD_PLAN_PATH /plans/plan.toml --seccomp 3 /cnb/buildpack/bin/detect /platform /plans/plan.toml 3<%s\n' \
            "$((10#$i))" "$links" "$etc" "$work/buildpacks/bench_bp-$i/0.0.1" "$work/app" "$work/platform" "$work/plans/$i" "$work/strict.bpf"
    done
} > "$work/bwrap.mk"
# The redirect of the filter takes a shell per recipe (make hands it to sh): that launcher alone,
# the same make of recipes that exec /bin/true, is subtracted from the peer's time.
{
    echo "all: $(seq -s ' ' -f 'bp%03g' 0 99)"
    for i in $(seq 0 99); do printf 'bp%03d:\n\t-exec /bin/true 3<%s\n' "$i" "$work/strict.bpf"; done
} > "$work/launcher.mk"
jobs=$(nproc)
make -s -j "$jobs" -f "$work/bwrap.mk" >/dev/null 2>&1 || { echo "detect-100.sh: the bubblewrap peer failed" >&2; make -j1 -f "$work/bwrap.mk" bp000; exit 1; }

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/detect.json" \
    -n "shell loop" "$work/loop.sh" \
    -n "bubblewrap" "make -s -j $jobs -f $work/bwrap.mk" \
    -n "launcher" "make -s -j $jobs -f $work/launcher.mk" \
    -n "stockade detect" "$stockade detect --buildpacks-dir $work/buildpacks --order $work/order.toml --path $work/app" \
    ${BASELINE:+-n baseline "$(realpath "$BASELINE") detect --buildpacks-dir $work/buildpacks --order $work/order.toml --path $work/app"} \
    >/dev/null
python3 - "$work/detect.json" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
bwrap = med['bubblewrap'] - med['launcher']
line = (f"100 buildpacks: shell loop {med['shell loop']:.0f} ms, bubblewrap {bwrap:.0f} ms (its launcher "
        f"{med['launcher']:.0f} ms taken off), stockade detect {med['stockade detect']:.0f} ms; "
        f"stockade/loop = {med['stockade detect'] / med['shell loop']:.2f}, bubblewrap/loop = {bwrap / med['shell loop']:.2f}, "
        f"stockade/bubblewrap = {med['stockade detect'] / bwrap:.2f}")
if "baseline" in med:
    line += f"; baseline {med['baseline']:.0f} ms, baseline/loop = {med['baseline'] / med['shell loop']:.2f}"
print(line)
PY
# Peak RSS (%M: the largest of the supervisor and the processes it reaped, here the supervisor).
/usr/bin/time -f "peak RSS of stockade detect: %M KiB" \
    "$stockade" detect --buildpacks-dir "$work/buildpacks" --order "$work/order.toml" --path "$work/app" 2>&1 >/dev/null | tail -1
