#!/usr/bin/env bash
# Push and pull of a 500 MB image (one layer of random bytes, so nothing
# compresses it away) against Debian's docker-registry on a loopback port:
# `stockade copy` and `skopeo copy` side by side in one hyperfine run each,
# medians and the ratio stockade/skopeo printed. Every push goes to a fresh
# repository of an emptied registry (nothing is skipped or mounted); every pull
# into an empty layout. Then a build from a builder image in the registry (the
# example buildpacks on a busybox build image): the first with an empty blob
# cache and builder store (pull and unpack) against a second with both warm
# (unpacks nothing), side by side in one hyperfine run.
# Not a test. SIZE_MB= and RUNS= change the size and the run count.
set -euo pipefail
stockade=$(realpath "${1:-.build/release/stockade}")
size_mb=${SIZE_MB:-500}
runs=${RUNS:-5}
work=$(mktemp -d)
registry_pid=""
trap '[ -n "$registry_pid" ] && kill "$registry_pid"; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

# The image: an OCI layout with one uncompressed tar layer holding SIZE_MB of random bytes.
python3 - "$work/image" "$size_mb" <<'EOF'
import hashlib, io, json, os, sys, tarfile
root, size = sys.argv[1], int(sys.argv[2]) << 20
os.makedirs(root + "/blobs/sha256")
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{digest}", "wb") as f: f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as tar:
    info = tarfile.TarInfo("payload"); info.size = size
    tar.addfile(info, io.BytesIO(os.urandom(size)))
layer = put(raw.getvalue())
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/payload"]},
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
with open(root + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
               annotations={"org.opencontainers.image.ref.name": "bench"})]}, f)
with open(root + "/oci-layout", "w") as f: f.write('{"imageLayoutVersion":"1.0.0"}')
EOF
host="localhost:$port"
"$stockade" copy "oci:$work/image:bench" "$host/pulled:1" --insecure-registry "$host" > /dev/null

hyperfine --style basic --runs "$runs" --export-json "$work/pull.json" \
    --prepare "rm -rf $work/out-stockade $work/out-skopeo" \
    -n "stockade pull" "$stockade copy $host/pulled:1 oci:$work/out-stockade:bench --insecure-registry $host" \
    -n "skopeo pull" "skopeo copy -q --src-tls-verify=false docker://$host/pulled:1 oci:$work/out-skopeo:bench"

# Pushes last, each into an emptied registry: skopeo remembers (its blob-info cache) which
# repositories had a blob and would mount it from there instead of uploading.
hyperfine --style basic --runs "$runs" --export-json "$work/push.json" \
    --prepare "rm -rf $work/storage/docker" \
    -n "stockade push" "$stockade copy oci:$work/image:bench $host/s\$(date +%s%N):1 --insecure-registry $host" \
    -n "skopeo push" "skopeo copy -q --dest-tls-verify=false oci:$work/image:bench docker://$host/k\$(date +%s%N):1"

# The example builder (as `make example` makes it), pushed; one warm-up build fills its store.
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/examples/make-run-image.sh" "$work/run-image" latest > /dev/null
{
    for bp in shell python labeller app-meta greeting-provider greeting-consumer; do
        printf '[[buildpacks]]\nuri = "%s"\n' "$here/examples/buildpacks/$bp"
    done
    sed -n '/^\[\[order\]\]/,$p' "$here/examples/builder.toml"
    printf '[build]\nimage = "oci:%s:latest"\n[[run.images]]\nimage = "oci:%s:latest"\n' "$work/run-image" "$work/run-image"
} > "$work/builder.toml"
"$stockade" builder create "$host/builder:1" --config "$work/builder.toml" --insecure-registry "$host" > /dev/null
build() {  # build CACHE STORE
    echo "XDG_CACHE_HOME=$work/$1 $stockade build --builder $host/builder:1 --insecure-registry $host --store $work/$2" \
         "--path $here/examples/apps/shell-app --network none"
}
warmup=$(eval "$(build warm-cache warm-store)")
warm=$(eval "$(build warm-cache warm-store)")
grep -q "Unpacking" <<< "$warmup" || { echo "the first build unpacked nothing" >&2; exit 1; }
if grep -q "Unpacking" <<< "$warm"; then echo "the warm build unpacked a layer" >&2; exit 1; fi
hyperfine --style basic --runs "$runs" --export-json "$work/builder.json" \
    --prepare "rm -rf $work/cold-cache $work/cold-store" --prepare true \
    -n "first build (cold store)" "$(build cold-cache cold-store)" \
    -n "second build (warm store)" "$(build warm-cache warm-store)"

python3 - "$work/push.json" "$work/pull.json" "$size_mb" "$work/builder.json" <<'EOF'
import json, sys
results = {r["command"]: r["median"] for r in json.load(open(sys.argv[4]))["results"]}
(cold_name, cold), (warm_name, warm) = results.items()
print(f"{cold_name}: {cold:.2f} s  {warm_name}: {warm:.2f} s  ratio warm/cold: {warm / cold:.2f}")
for path in sys.argv[1:3]:
    results = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    names = list(results)
    mine, theirs = results[names[0]], results[names[1]]
    ratio = f"{mine / theirs:.2f}" if theirs > 0 else "n/a"
    print(f"{names[0]}: {mine:.2f} s ({int(sys.argv[3]) / mine:.0f} MB/s)  {names[1]}: {theirs:.2f} s  ratio stockade/skopeo: {ratio}")
EOF
