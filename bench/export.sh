#!/usr/bin/env bash
# Exporting an app with a ~250 MB launch layer of many small files and a
# ~250 MB launch layer of a few large files: `stockade export` against the
# floor `tar -cf - TREES | sha256sum` of the same trees, and against
# `umoci repack` of a bundle whose rootfs holds the same trees. Every run
# starts from an empty output (the clean-up is a hyperfine --prepare, not
# timed), page cache warm. Prints medians and ratios. Not a test.
#
# BENCH_DIR: where the ~2 GB of scratch data goes (default /var/tmp: a disk,
# where /tmp may be memory). RUNS: timed runs per command (default 5).
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
runs=${RUNS:-5}
[ -x "$(dirname "$stockade")/stockade-launcher" ] || [ -n "${STOCKADE_LAUNCHER:-}" ] ||
    { echo "export.sh: no stockade-launcher beside $stockade (or STOCKADE_LAUNCHER)" >&2; exit 1; }
for tool in umoci hyperfine openssl python3; do
    command -v $tool >/dev/null || { echo "export.sh: $tool is missing" >&2; exit 1; }
done
base=${BENCH_DIR:-/var/tmp}
mkdir -p "$base"
work=$(mktemp -d "$base/stockade-export.XXXXXX")
trap 'rm -rf "$work"' EXIT
layers=$work/layers
app=$work/app

# Deterministic trees: the same bytes on every machine and every run.
# small: 50,000 files of 1-9 KB (5 KB on average; base64 text, so it would
# compress a little) in 50 x 10 directories; large: 4 random files of 64 MiB.
mkdir -p "$layers/config" "$layers/bench_bp" "$app"
cat >"$layers/config/metadata.toml" <<'TOML'
buildpack-default-process-type = "web"

[[buildpacks]]
id = "bench/bp"
version = "1.0.0"
api = "0.10"

[[processes]]
type = "web"
command = ["/bin/true"]
args = []
direct = true
buildpack-id = "bench/bp"
TOML
printf '[types]\nlaunch = true\n' >"$layers/bench_bp/small.toml"
printf '[types]\nlaunch = true\n' >"$layers/bench_bp/large.toml"
printf 'web: /bin/true\n' >"$app/Procfile"
printf 'print("hello")\n' >"$app/main.py"
python3 - "$layers/bench_bp" <<'PY'
import base64, os, random, sys
root = sys.argv[1]
rng = random.Random(20261129)
for a in range(50):
    for b in range(10):
        d = f"{root}/small/d{a:02}/e{b}"
        os.makedirs(d)
        for f in range(100):
            n = rng.randint(1024, 9216)
            with open(f"{d}/f{f:02}.txt", "wb") as out:
                out.write(base64.b64encode(rng.randbytes(n * 3 // 4))[:n])
os.makedirs(f"{root}/large")
for i in range(4):
    with open(f"{root}/large/blob{i}.bin", "wb") as out:
        for _ in range(64):
            out.write(rng.randbytes(1 << 20))
PY
small_mb=$(du -sm --apparent-size "$layers/bench_bp/small" | cut -f1)
large_mb=$(du -sm --apparent-size "$layers/bench_bp/large" | cut -f1)
echo "trees: small $small_mb MB in $(find "$layers/bench_bp/small" -type f | wc -l) files, large $large_mb MB in $(find "$layers/bench_bp/large" -type f | wc -l) files"

# umoci: an empty base image unpacked as a bundle, the same trees copied into
# its rootfs once. repack diffs the rootfs against the unpack's mtree, which
# it does not update (no --refresh-bundle), so every repack archives both
# trees again; the layout is reset from a pristine copy before each run all
# the same, so no run finds the previous one's blob.
umoci init --layout "$work/umoci0"
umoci new --image "$work/umoci0:base"
umoci unpack --image "$work/umoci0:base" "$work/bundle" >/dev/null
mkdir -p "$work/bundle/rootfs/layers/bench_bp"
cp -a "$layers/bench_bp/small" "$layers/bench_bp/large" "$work/bundle/rootfs/layers/bench_bp/"
cp -a "$app" "$work/bundle/rootfs/workspace"

# The floor as the issue puts it, with coreutils' sha256sum; the same with
# OpenSSL's SHA-256 (SHA extensions where the CPU has them), which is what
# stockade hashes with; and that plus writing the stream to a file.
trees="tar -cf - -C $layers/bench_bp small large -C $work app"
floor="$trees | sha256sum"
floor_ssl="$trees | openssl dgst -sha256"
written="$trees | tee $work/floor.tar | openssl dgst -sha256"
export_cmd="$stockade export --layers $layers --app $app --output $work/out:bench"
repack="umoci repack --image $work/umoci:run $work/bundle"

# The ~1 GB just written is flushed now rather than by the kernel during the
# timed runs.
sync
# One untimed run of each warms the page cache (hyperfine's warm-up, with the
# same --prepare as the timed runs).
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/export.json" \
    --prepare true -n "tar | sha256sum" "$floor" \
    --prepare true -n "tar | openssl sha256" "$floor_ssl" \
    --prepare "rm -f $work/floor.tar" -n "tar | tee file | openssl" "$written" \
    --prepare "rm -rf $work/out" -n "stockade export" "$export_cmd >/dev/null" \
    --prepare "rm -rf $work/umoci && cp -a $work/umoci0 $work/umoci" -n "umoci repack" "$repack" >/dev/null

# What each wrote, to check they did the same work.
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def layers(layout, tag):
    index = json.load(open(f"{layout}/index.json"))
    m = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.load(open(f"{layout}/blobs/sha256/{m['digest'][7:]}"))
    return [(l["mediaType"].rsplit(".", 1)[-1], l["size"]) for l in manifest["layers"]]
for name, layout, tag in [("stockade", f"{work}/out", "bench"), ("umoci", f"{work}/umoci", "run")]:
    print(f"{name} layers: " + ", ".join(f"{size / 1e6:.1f} MB {kind}" for kind, size in layers(layout, tag)))
print(f"tar stream: {os.path.getsize(f'{work}/floor.tar') / 1e6:.1f} MB")
PY

python3 - "$work/export.json" "$runs" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] for k, v in results.items()}
floor, ssl = med["tar | sha256sum"], med["tar | openssl sha256"]
print(f"medians of {sys.argv[2]} runs, page cache warm:")
print(f"{'command':26} {'median':>8} {'/ floor':>8} {'/ openssl floor':>16}")
for name in ["tar | sha256sum", "tar | openssl sha256", "tar | tee file | openssl", "stockade export", "umoci repack"]:
    print(f"{name:26} {med[name]:7.2f}s {med[name] / floor:8.2f} {med[name] / ssl:16.2f}")
s = med["stockade export"]
print(f"stockade / floor = {s / floor:.2f}, stockade / openssl floor = {s / ssl:.2f} (aim <= 1.3); "
      f"stockade / umoci = {s / med['umoci repack']:.2f} (aim < 1)")
PY
