#!/usr/bin/env bash
# Packs a release tarball for one machine type, for deploy/pi/install.sh --source: the build, the
# production dependencies with that arch's native prebuilds, a Node.js 20 for it and deploy/pi
# itself, so a Pi installs from the one file with no npm, compiler or registry access (the
# cloud-init first boot runs the install.sh inside it).
#
#   scripts/pack-release.sh arm64|armv7|x64 [OUT_DIR]
#
# Writes OUT_DIR/bramble-<version>-linux-<arch>.tar.gz (default OUT_DIR: .cache/release) and prints
# its path. Needs a build (npm run build) and the npm registry: Node comes from the npm package
# node-linux-<arch>, the dependencies from `npm ci --cpu=<arch>`; both are cached under OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { echo "usage: scripts/pack-release.sh arm64|armv7|x64 [OUT_DIR]" >&2; exit 2; }
# node_arch: Node's name in its downloads (install.sh checks the machine against it); npm_cpu: npm's.
case ${1:-} in
  arm64) node_arch=arm64 npm_cpu=arm64 ;;
  armv7) node_arch=armv7l npm_cpu=arm ;;
  x64) node_arch=x64 npm_cpu=x64 ;;
  *) echo "pack-release: the first argument must be arm64, armv7 or x64, not '${1:-}'" >&2; usage ;;
esac
out=$(mkdir -p "${2:-$root/.cache/release}" && cd "${2:-$root/.cache/release}" && pwd -P)
[ -f dist/src/main.js ] || { echo "pack-release: no dist/src/main.js: run npm run build first" >&2; exit 1; }
version=$(node -p 'require("./package.json").version')
name=bramble-$version-linux-$node_arch

# Cached per arch: Node (per version line) and the dependencies (per lock file).
cache=$out/cache-$node_arch
node_spec=node-linux-$node_arch@20
if [ "$(cat "$cache/node/.spec" 2>/dev/null)" != "$node_spec" ]; then
  rm -rf "$cache/node" "$cache/pack"
  mkdir -p "$cache/pack" "$cache/node"
  tarball=$(cd "$cache/pack" && npm pack --silent "$node_spec" | tail -1)
  tar -xzf "$cache/pack/$tarball" -C "$cache/node" --strip-components=1 package/bin
  rm -rf "$cache/pack"
  echo "$node_spec" >"$cache/node/.spec"
fi
lock_hash=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/deps/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  rm -rf "$cache/deps"
  mkdir -p "$cache/deps"
  cp package.json package-lock.json "$cache/deps/"
  # --ignore-scripts: install scripts would build for this machine; the arch's prebuilds load instead.
  (cd "$cache/deps" && npm ci --cpu="$npm_cpu" --os=linux --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" >"$cache/deps/.lock-hash"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/dist" "$stage/$name/node" "$stage/$name/deploy"
cp -a package.json package-lock.json bin "$stage/$name/"
cp -a deploy/pi "$stage/$name/deploy/"
cp -a dist/src "$stage/$name/dist/"
cp -a "$cache/deps/node_modules" "$stage/$name/"
cp -a "$cache/node/bin" "$stage/$name/node/"
echo "$node_arch" >"$stage/$name/RELEASE-ARCH"
tar -czf "$out/$name.tar.gz" -C "$stage" "$name"
echo "$out/$name.tar.gz"
