#!/usr/bin/env bash
# What the per-buildpack sandbox costs in a real build, and a whole small
# build against its scripts unsandboxed. Side by side in one hyperfine run:
# - `stockade build` of one group of 10 buildpacks (each bin/detect and each
#   bin/build in its own sandbox), the same 20 scripts run one after another
#   in ONE `stockade exec` sandbox, and the same 20 scripts unsandboxed;
# - `stockade build` of examples/apps/script-app (detect + build, no export)
#   against its buildpack's two scripts unsandboxed and each in a bubblewrap sandbox.
# Prints medians, the cost per buildpack ((build - one sandbox) / 10) and the
# ratios. BASELINE=path/to/an/older/stockade adds its two builds to the same run.
# Not a test.
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-20}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/app" "$work/platform/env"
echo "app" > "$work/app/main.txt"
bps=""
for i in $(seq -w 0 9); do
    dir="$work/bp-$i"
    mkdir -p "$dir/bin"
    printf 'api = "0.10"\n[buildpack]\nid = "bench/bp-%s"\nversion = "0.0.1"\n' "$i" > "$dir/buildpack.toml"
    printf '#!/bin/sh\n[ -f main.txt ]\n' > "$dir/bin/detect"
    # A layer with a file and its metadata: what a small buildpack does.
    printf '#!/bin/sh\nset -eu\nmkdir -p "$1/l%s/bin"\necho "built %s" > "$1/l%s/bin/out"\nprintf "[types]\\nlaunch = true\\n" > "$1/l%s.toml"\n' \
        "$i" "$i" "$i" "$i" > "$dir/bin/build"
    chmod 755 "$dir/bin/detect" "$dir/bin/build"
    bps+=" --buildpack $dir"
done
# The same scripts as a lifecycle without sandboxes runs them: detect each, then build each.
cat > "$work/all.sh" <<'ALL'
#!/bin/sh
set -eu
work=$1 out=$2
rm -rf "${out:?}"/*
cd "$work/app"
for dir in "$work"/bp-*; do
    : > "$out/plan.toml"
    CNB_BUILDPACK_DIR=$dir CNB_PLATFORM_DIR=$work/platform CNB_BUILD_PLAN_PATH=$out/plan.toml \
        "$dir/bin/detect" "$work/platform" "$out/plan.toml"
done
for dir in "$work"/bp-*; do
    name=$(basename "$dir")
    mkdir -p "$out/$name"
    CNB_BUILDPACK_DIR=$dir CNB_LAYERS_DIR=$out/$name CNB_PLATFORM_DIR=$work/platform CNB_BP_PLAN_PATH=$out/plan.toml \
        "$dir/bin/build" "$out/$name" "$work/platform" "$out/plan.toml"
done
ALL
chmod 755 "$work/all.sh"
# The sandbox's stack user is not the invoker: its output directory is open to it.
mkdir -p "$work/one-out" "$work/plain-out"
chmod 777 "$work/one-out"

# The script app's own buildpack, unsandboxed, as the lifecycle calls it.
script="$repo/examples/apps/script-app"
cp -R "$script" "$work/script-app"
cat > "$work/script.sh" <<SCRIPT
#!/bin/sh
set -eu
out=$work/script-out
rm -rf "\$out" && mkdir -p "\$out/layers" "\$out/platform/env"
printf 'hello from project.toml' > "\$out/platform/env/GREETING"
bp=$work/script-app/script-buildpack
cd $work/script-app
: > "\$out/plan.toml"
CNB_BUILDPACK_DIR=\$bp CNB_PLATFORM_DIR=\$out/platform CNB_BUILD_PLAN_PATH=\$out/plan.toml "\$bp/bin/detect" "\$out/platform" "\$out/plan.toml"
CNB_BUILDPACK_DIR=\$bp CNB_LAYERS_DIR=\$out/layers CNB_PLATFORM_DIR=\$out/platform CNB_BP_PLAN_PATH=\$out/plan.toml \
    "\$bp/bin/build" "\$out/layers" "\$out/platform" "\$out/plan.toml" >/dev/null
SCRIPT
chmod 755 "$work/script.sh"
# The peer: the same two scripts each in a bubblewrap sandbox of its own, with the isolation
# and filter of exec-startup.sh's: what a sandbox per buildpack costs without Stockade.
"$stockade" profile compile default --output "$work/default.bpf"
bwrap="bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL --ro-bind /usr /usr"
for d in bin sbin lib lib64; do
    [ -L "/$d" ] && bwrap+=" --symlink $(readlink /$d) /$d"
done
for f in ld.so.cache ld.so.conf ld.so.conf.d ssl ca-certificates resolv.conf hosts nsswitch.conf; do
    [ -e "/etc/$f" ] && bwrap+=" --ro-bind /etc/$f /etc/$f"
done
bwrap+=" --proc /proc --dev /dev --tmpfs /tmp --bind $work $work --chdir $work/script-app --seccomp 3"
cat > "$work/script-bwrap.sh" <<SCRIPT
#!/bin/sh
set -eu
out=$work/script-bwrap-out
rm -rf "\$out" && mkdir -p "\$out/layers" "\$out/platform/env"
printf 'hello from project.toml' > "\$out/platform/env/GREETING"
bp=$work/script-app/script-buildpack
: > "\$out/plan.toml"
$bwrap /usr/bin/env CNB_BUILDPACK_DIR=\$bp CNB_PLATFORM_DIR=\$out/platform CNB_BUILD_PLAN_PATH=\$out/plan.toml \\
    "\$bp/bin/detect" "\$out/platform" "\$out/plan.toml" 3<$work/default.bpf
$bwrap /usr/bin/env CNB_BUILDPACK_DIR=\$bp CNB_LAYERS_DIR=\$out/layers CNB_PLATFORM_DIR=\$out/platform CNB_BP_PLAN_PATH=\$out/plan.toml \\
    "\$bp/bin/build" "\$out/layers" "\$out/platform" "\$out/plan.toml" 3<$work/default.bpf >/dev/null
SCRIPT
chmod 755 "$work/script-bwrap.sh"

build10="$stockade build $bps --path $work/app --network none"
one="$stockade exec --bind $work:$work -- /bin/sh $work/all.sh $work $work/one-out"
small="$stockade build --path $work/script-app --network none"
$build10 >/dev/null 2>&1 && $one >/dev/null && $small >/dev/null 2>&1 && "$work/script.sh" && "$work/script-bwrap.sh" ||
    { echo "build-cost.sh: a warm-up run failed" >&2; $build10; $small; exit 1; }

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/cost.json" \
    -n "build 10" "$build10" \
    -n "one sandbox" "$one" \
    -n "unsandboxed 10" "$work/all.sh $work $work/plain-out" \
    -n "build script-app" "$small" \
    -n "unsandboxed script-app" "$work/script.sh" \
    -n "bubblewrap script-app" "$work/script-bwrap.sh" \
    ${BASELINE:+-n "baseline build 10" "${build10/$stockade/$(realpath "$BASELINE")}"} \
    ${BASELINE:+-n "baseline build script-app" "${small/$stockade/$(realpath "$BASELINE")}"} >/dev/null
python3 - "$work/cost.json" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
if "baseline build 10" in med:
    print(f"baseline: build 10 {med['baseline build 10']:.0f} ms, script-app {med['baseline build script-app']:.0f} ms; "
          f"stockade/baseline = {med['build 10'] / med['baseline build 10']:.2f}, "
          f"{med['build script-app'] / med['baseline build script-app']:.2f}")
b, o, p = med["build 10"], med["one sandbox"], med["unsandboxed 10"]
print(f"10 buildpacks: stockade build {b:.0f} ms, one sandbox {o:.0f} ms, unsandboxed {p:.0f} ms; "
      f"per buildpack (build - one sandbox) / 10 = {(b - o) / 10:.1f} ms; build/one sandbox = {b / o:.2f}")
s, u, w = med["build script-app"], med["unsandboxed script-app"], med["bubblewrap script-app"]
print(f"script-app: stockade build {s:.0f} ms, its two scripts unsandboxed {u:.0f} ms, each in a bubblewrap sandbox {w:.0f} ms; "
      f"build/unsandboxed = {s / u:.2f}, bubblewrap/unsandboxed = {w / u:.2f}, build/bubblewrap = {s / w:.2f}")
PY
