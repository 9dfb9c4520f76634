#!/usr/bin/env bash
# A lifecycle image as kpack's ClusterLifecycle and `pack builder create --lifecycle-image` take
# one: a single layer holding /cnb/lifecycle/ (stockade as `lifecycle`, a link per phase to it, the
# static launcher, lifecycle.toml), labelled io.buildpacks.lifecycle.version and
# io.buildpacks.lifecycle.apis. The API ranges are the binary's own (`-version`).
# Usage: lifecycle-image.sh OUTPUT-LAYOUT [TAG] [DIRECTORY-WITH-stockade-AND-stockade-launcher]
set -euo pipefail
out=${1:?usage: lifecycle-image.sh OUTPUT-LAYOUT [TAG] [BINARY-DIRECTORY]}
tag=${2:-latest}
bin=${3:-.build/release}
banner=$(CNB_PLATFORM_API=0.13 "$bin/stockade" lifecycle analyzer -version)
# "stockade 0.1.0 (Platform API 0.7-0.15, Buildpack API 0.7-0.12)"
version=${LIFECYCLE_VERSION:-$(sed -n 's/^stockade \([^ ]*\) .*/\1/p' <<<"$banner")}
platform=$(sed -n 's/.*Platform API \([0-9.]*-[0-9.]*\).*/\1/p' <<<"$banner")
buildpack=$(sed -n 's/.*Buildpack API \([0-9.]*-[0-9.]*\).*/\1/p' <<<"$banner")
[[ -n $platform && -n $buildpack ]] || { echo "lifecycle-image: cannot read the API ranges from: $banner" >&2; exit 1; }
# "0.7-0.15" -> "0.7", "0.8", ... "0.15" (quoted, comma separated)
versions() { local low=${1%-*} high=${1#*-}; seq -s ' ' "${low#0.}" "${high#0.}" | sed 's/\([0-9]\+\)/"0.\1"/g; s/ /, /g'; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/cnb/lifecycle"
install -m 0755 "$bin/stockade" "$stage/cnb/lifecycle/lifecycle"
install -m 0755 "$bin/stockade-launcher" "$stage/cnb/lifecycle/launcher"
for phase in analyzer detector restorer builder exporter creator rebaser; do
    ln -s lifecycle "$stage/cnb/lifecycle/$phase"
done
cat > "$stage/cnb/lifecycle/lifecycle.toml" <<TOML
[apis]
[apis.buildpack]
  deprecated = []
  supported = [$(versions "$buildpack")]
[apis.platform]
  deprecated = []
  supported = [$(versions "$platform")]

[lifecycle]
  version = "$version"
TOML
chmod 0644 "$stage/cnb/lifecycle/lifecycle.toml"
apis="{\"buildpack\":{\"deprecated\":[],\"supported\":[$(versions "$buildpack" | tr -d ' ')]},\"platform\":{\"deprecated\":[],\"supported\":[$(versions "$platform" | tr -d ' ')]}}"

rm -rf "$out"
umoci init --layout "$out"
umoci new --image "$out:$tag"
# Run as root so the layer's entries are root's, as the reference lifecycle image has them.
umoci insert --image "$out:$tag" "$stage/cnb" /cnb
umoci config --image "$out:$tag" --os linux --architecture "$(dpkg --print-architecture 2>/dev/null || echo amd64)" \
    --config.label "io.buildpacks.lifecycle.version=$version" --config.label "io.buildpacks.lifecycle.apis=$apis"
umoci gc --layout "$out"
echo "lifecycle image $out:$tag (Platform API $platform, Buildpack API $buildpack)"
