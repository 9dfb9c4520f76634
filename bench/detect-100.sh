#!/usr/bin/env bash
# Detection of one group of 100 trivial optional buildpacks (half pass, half
# exit 100): `stockade detect`, each bin/detect in its own sandbox, several at
# once, against a plain shell loop running the same scripts unsandboxed.
# Prints the medians and the ratio. Not a test.
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

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/detect.json" \
    -n "shell loop" "$work/loop.sh" \
    -n "stockade detect" "$stockade detect --buildpacks-dir $work/buildpacks --order $work/order.toml --path $work/app" \
    ${BASELINE:+-n baseline "$(realpath "$BASELINE") detect --buildpacks-dir $work/buildpacks --order $work/order.toml --path $work/app"} \
    >/dev/null
python3 - "$work/detect.json" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
line = (f"100 buildpacks: shell loop {med['shell loop']:.0f} ms, stockade detect {med['stockade detect']:.0f} ms; "
        f"stockade/loop = {med['stockade detect'] / med['shell loop']:.2f}")
if "baseline" in med:
    line += f"; baseline {med['baseline']:.0f} ms, baseline/loop = {med['baseline'] / med['shell loop']:.2f}"
print(line)
PY
# Peak RSS (%M: the largest of the supervisor and the processes it reaped, here the supervisor).
/usr/bin/time -f "peak RSS of stockade detect: %M KiB" \
    "$stockade" detect --buildpacks-dir "$work/buildpacks" --order "$work/order.toml" --path "$work/app" 2>&1 >/dev/null | tail -1
