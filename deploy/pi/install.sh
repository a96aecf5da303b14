#!/usr/bin/env bash
# Installs Bramble on Raspberry Pi OS, Ubuntu or Debian (arm64, armhf, amd64) as a hub or an agent:
# Node.js, Docker and WireGuard tools as needed, Bramble itself in /opt/bramble with a `bramble`
# command in /usr/local/bin, the data dir, and a systemd unit that it enables and starts.
#
#   install.sh --role hub   [--advertise ADDR] [--source DIR|TARBALL] [--dry-run]
#   install.sh --role agent --hub HOST[:PORT] --token TOKEN [--node-name NAME] [--source ...] [--dry-run]
#
# --source: a release tarball from scripts/pack-release.sh (its production dependencies and Node
# are inside: nothing is fetched from npm), or a built checkout (default: the one holding this
# script; `npm ci --omit=dev` fetches its dependencies). --advertise: the hub's address as agents
# reach it (default: this machine's address on its default route). Running it again with the same
# arguments changes nothing; with a newer source it upgrades in place and restarts the unit.
set -euo pipefail

PREFIX=/opt/bramble
WRAPPER=/usr/local/bin/bramble
DATA_DIR=/var/lib/bramble
ETC_DIR=/etc/bramble
UNIT_DIR=/etc/systemd/system
here=$(cd "$(dirname "$0")" && pwd -P)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage_error() {
  printf 'install.sh: %s\n' "$*" >&2
  echo "usage: install.sh --role hub [--advertise ADDR] | --role agent --hub HOST[:PORT] --token TOKEN [--node-name NAME]; [--source DIR|TARBALL] [--dry-run]" >&2
  exit 2
}

role='' hub='' token='' node_name='' advertise='' source="$here/../.." dry_run=no
while [ $# -gt 0 ]; do
  case $1 in
    --role | --hub | --token | --node-name | --advertise | --source)
      [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"
      case $1 in
        --role) role=$2 ;;
        --hub) hub=$2 ;;
        --token) token=$2 ;;
        --node-name) node_name=$2 ;;
        --advertise) advertise=$2 ;;
        --source) source=$2 ;;
      esac
      shift 2
      ;;
    --dry-run) dry_run=yes; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done

case $role in
  hub)
    [ -z "$hub$token$node_name" ] || usage_error "--hub, --token and --node-name are for --role agent; a hub makes its own tokens (bramble token create)"
    if [ -z "$advertise" ]; then
      # The source address of the default route: a local lookup, nothing is sent.
      advertise=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)
    fi
    [ -z "$advertise" ] || [[ $advertise =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)$ ]] || usage_error "--advertise must be a host name or an IP address, got '$advertise'"
    ;;
  agent)
    [ -n "$hub" ] || usage_error "--role agent needs --hub HOST[:PORT], the hub's API address"
    [ -n "$token" ] || usage_error "--role agent needs --token, a join token from \`bramble token create\` on the hub"
    # The agent takes HOST[:PORT]; a URL as the hub's kubeconfig writes it is accepted too.
    hub=${hub#https://}
    hub=${hub%/}
    [[ $hub =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$ ]] || usage_error "--hub must be HOST, HOST:PORT or https://HOST:PORT, got '$hub'"
    [[ $token =~ ^(K10[0-9a-f]{64}::)?[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || usage_error "--token is not a join token (K10<hash>::<id>.<secret> from \`bramble token create\`)"
    [ -z "$advertise" ] || usage_error "--advertise is for --role hub"
    [ -z "$node_name" ] || [[ $node_name =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || usage_error "--node-name must be a DNS-1123 label (lower-case letters, digits and '-'), got '$node_name'"
    ;;
  '') usage_error "--role is required: hub or agent" ;;
  *) usage_error "--role must be hub or agent, got '$role'" ;;
esac
[ -e "$source" ] || usage_error "--source $source does not exist"
[ "$dry_run" = yes ] || [ "$(id -u)" -eq 0 ] || die "run as root (sudo), or with --dry-run to see the steps"

# run CMD...: runs a step, or prints it under --dry-run.
run() {
  if [ "$dry_run" = yes ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

# The machine: Debian's arch name, Node's for the tarballs, and pack-release.sh's. A Pi Zero or
# Pi 1 (ARMv6) says armhf too, but Node 20 has no build for it.
deb_arch=$(dpkg --print-architecture)
case $deb_arch in
  arm64) node_arch=arm64 pack_arch=arm64 ;;
  armhf) node_arch=armv7l pack_arch=armv7 ;;
  amd64) node_arch=x64 pack_arch=x64 ;;
  *) die "no Node.js 20 build for $deb_arch: Bramble installs on arm64, armhf (ARMv7) and amd64" ;;
esac
[ "$(uname -m)" != armv6l ] || die "this is an ARMv6 board (Pi Zero, Pi 1): Node.js 20 needs ARMv7 or newer"

apt_updated=no
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -gt 0 ] || return 0
  say "installing ${missing[*]} with apt-get"
  if [ "$apt_updated" = no ]; then
    run env DEBIAN_FRONTEND=noninteractive apt-get update -qq || say "apt-get update reported errors; going on with the lists it has"
    apt_updated=yes
  fi
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The kernel's own WireGuard (module or built in); without it the agent runs wireguard-go.
kernel_has_wireguard() {
  [ -d /sys/module/wireguard ] && return 0
  grep -qs '/wireguard\.ko' "/lib/modules/$(uname -r)/modules.builtin" "/lib/modules/$(uname -r)/modules.dep"
}

node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

# --- The source: a release tarball is unpacked to a scratch dir first. ---
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ -f "$source" ]; then
  tar -xzf "$source" -C "$scratch" || die "--source $source is not a .tar.gz release (scripts/pack-release.sh makes one)"
  src=$(find "$scratch" -mindepth 1 -maxdepth 2 -name package.json -printf '%h\n' | head -n 1)
  [ -n "$src" ] || die "--source $source holds no package.json: not a Bramble release"
else
  src=$(cd "$source" && pwd -P)
fi
[ -f "$src/dist/src/main.js" ] || die "$src has no dist/src/main.js: run \`npm run build\` there first"
[ -f "$src/bin/bramble" ] && [ -f "$src/package-lock.json" ] || die "$src is not a Bramble checkout or release (bin/bramble, package-lock.json)"
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -n 1)
release_arch=$(cat "$src/RELEASE-ARCH" 2>/dev/null || true)
[ -z "$release_arch" ] || [ "$release_arch" = "$node_arch" ] || die "--source is a release for $release_arch; this machine needs the $node_arch one (scripts/pack-release.sh $pack_arch)"

# --- Packages: Docker runs the pods; WireGuard carries the overlay between nodes. A command that
# is already there is kept however it came (Docker's own docker-ce conflicts with docker.io). ---
packages=(ca-certificates)
if [ "$role" = agent ]; then
  command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
  command -v iptables >/dev/null 2>&1 || packages+=(iptables)
  command -v wg >/dev/null 2>&1 || packages+=(wireguard-tools)
fi
apt_install "${packages[@]}"
if [ "$role" = agent ] && ! kernel_has_wireguard && ! command -v wireguard-go >/dev/null 2>&1; then
  if apt-cache show wireguard-go >/dev/null 2>&1; then apt_install wireguard-go
  else say "warning: this kernel has no WireGuard and apt has no wireguard-go: pods here cannot reach other nodes until one of them is installed"; fi
fi

# --- Node.js 20 or newer, first found of: the one on PATH or installed here before; the release's
# own (node-linux-<arch> from the npm registry, bundled by pack-release.sh: works offline); apt's
# `nodejs` when its version is 20 or newer (Debian 13, Ubuntu 24.10); else the official tarball
# from nodejs.org for this arch, checked against its SHASUMS256.txt. ---
node_dir=$PREFIX/node
if [ -x "$node_dir/bin/node" ] && [ "$(node_major "$node_dir/bin/node")" -ge 20 ]; then
  node_bin=$node_dir/bin/node
elif command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 20 ]; then
  node_bin=$(command -v node)
elif [ -x "$src/node/bin/node" ]; then
  say "installing the release's Node.js into $node_dir"
  run mkdir -p "$node_dir"
  run cp -a "$src/node/." "$node_dir/"
  node_bin=$node_dir/bin/node
elif [ "$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p')" -ge 20 ] 2>/dev/null; then
  apt_install nodejs npm
  node_bin=/usr/bin/node
else
  apt_install curl xz-utils
  base=https://nodejs.org/dist/latest-v20.x
  say "fetching Node.js 20 for $node_arch from $base"
  if [ "$dry_run" = no ]; then
    curl -fsSL "$base/SHASUMS256.txt" -o "$scratch/SHASUMS256.txt" || die "cannot reach $base: use a release tarball (scripts/pack-release.sh bundles Node)"
    file=$(awk -v a="linux-$node_arch.tar.xz" '$2 ~ a"$" {print $2}' "$scratch/SHASUMS256.txt")
    curl -fsSL "$base/$file" -o "$scratch/$file"
    (cd "$scratch" && grep " $file\$" SHASUMS256.txt | sha256sum -c --quiet) || die "$file does not match its checksum"
    mkdir -p "$node_dir"
    tar -xJf "$scratch/$file" -C "$node_dir" --strip-components=1
  fi
  node_bin=$node_dir/bin/node
fi
[ "$dry_run" = yes ] || say "Node.js $("$node_bin" --version) at $node_bin"

# --- Bramble into $PREFIX, staged beside it and swapped in; skipped when the same build is there. ---
stamp=$(cd "$src" && { cat package-lock.json bin/bramble; find dist/src -type f -print0 | sort -z | xargs -0 cat; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PREFIX/.install-stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$PREFIX/dist/src/main.js" ]; then
  say "Bramble $version is already installed in $PREFIX"
  changed=no
else
  say "installing Bramble $version into $PREFIX"
  stage=$PREFIX/.stage
  run rm -rf "$stage"
  run mkdir -p "$stage/dist"
  run cp -a "$src/package.json" "$src/package-lock.json" "$src/bin" "$stage/"
  run cp -a "$src/dist/src" "$stage/dist/"
  if [ -n "$release_arch" ]; then
    run cp -a "$src/node_modules" "$stage/"
  else
    npm=$(dirname "$node_bin")/npm
    [ -x "$npm" ] || npm=$(command -v npm || true)
    [ -n "$npm" ] || die "npm is needed to install a checkout's dependencies: apt-get install npm, or use a release tarball"
    run env PATH="$(dirname "$node_bin"):$PATH" "$npm" ci --omit=dev --no-audit --no-fund --prefix "$stage"
  fi
  # bin/bramble reinstalls dependencies older than the lock file and rebuilds a dist older than
  # package.json: mark both current.
  run touch "$stage/node_modules/.package-lock.json" "$stage/dist/src/main.js"
  for entry in package.json package-lock.json bin dist node_modules; do
    run rm -rf "${PREFIX:?}/$entry"
    run mv "$stage/$entry" "$PREFIX/$entry"
  done
  run rmdir "$stage"
  if [ "$dry_run" = no ]; then echo "$stamp" >"$PREFIX/.install-stamp"; fi
  changed=yes
fi

wrapper="#!/bin/sh
# Written by Bramble's deploy/pi/install.sh: the installed Bramble with its Node.js.
PATH=$(dirname "$node_bin"):\$PATH
export PATH
exec $PREFIX/bin/bramble \"\$@\""
if [ "$(cat "$WRAPPER" 2>/dev/null)" != "$wrapper" ]; then
  say "writing $WRAPPER"
  if [ "$dry_run" = no ]; then printf '%s\n' "$wrapper" >"$WRAPPER" && chmod 0755 "$WRAPPER"; fi
fi

# --- Data dir (owner-only: it holds the CA key, tokens and the store) and the agent's settings. ---
run mkdir -p "$DATA_DIR" "$ETC_DIR"
run chmod 0700 "$DATA_DIR"
if [ "$role" = agent ]; then
  env_text="# Read by bramble-agent.service (written by install.sh): the hub to join, the join token
# (used once, at the first join) and further agent flags.
BRAMBLE_HUB=$hub
BRAMBLE_TOKEN=$token
BRAMBLE_AGENT_ARGS=${node_name:+--node-name $node_name}"
  if [ "$(cat "$ETC_DIR/agent.env" 2>/dev/null)" != "$env_text" ]; then
    say "writing $ETC_DIR/agent.env"
    changed=yes
    if [ "$dry_run" = no ]; then (umask 077 && printf '%s\n' "$env_text" >"$ETC_DIR/agent.env"); fi
  fi
  run chmod 0600 "$ETC_DIR/agent.env"
else
  [ -n "$advertise" ] || say "warning: no default route to take the hub's address from: agents on other machines need --advertise ADDR"
  env_text="# Read by bramble-hub.service (written by install.sh): extra \`bramble hub\` flags. --advertise is
# the address agents and kubeconfigs use to reach this hub.
BRAMBLE_HUB_ARGS=${advertise:+--advertise $advertise}"
  if [ "$(cat "$ETC_DIR/hub.env" 2>/dev/null)" != "$env_text" ]; then
    say "writing $ETC_DIR/hub.env"
    changed=yes
    if [ "$dry_run" = no ]; then printf '%s\n' "$env_text" >"$ETC_DIR/hub.env"; fi
  fi
fi

# --- The unit, enabled for boot; started (or restarted after a change) when systemd runs. ---
unit=bramble-$role.service
if ! cmp -s "$here/$unit" "$UNIT_DIR/$unit"; then
  say "writing $UNIT_DIR/$unit"
  run install -m 0644 "$here/$unit" "$UNIT_DIR/$unit"
  changed=yes
fi
# Backoff between restarts needs systemd 254 (RestartSteps); older ones keep the unit's fixed delay.
dropin=$UNIT_DIR/$unit.d/restart-backoff.conf
systemd_version=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
if [ "${systemd_version:-0}" -ge 254 ] && [ ! -f "$dropin" ]; then
  say "writing $dropin"
  run mkdir -p "$(dirname "$dropin")"
  if [ "$dry_run" = no ]; then printf '[Service]\nRestartSteps=8\nRestartMaxDelaySec=5min\n' >"$dropin"; fi
fi
if ! command -v systemctl >/dev/null 2>&1; then
  say "no systemctl here: start Bramble yourself with: bramble ${role} (settings in $ETC_DIR)"
else
  # enable works without a running systemd (it only makes the boot-time links).
  [ -e "$UNIT_DIR/multi-user.target.wants/$unit" ] || run systemctl enable --quiet "$unit"
  if [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
    if [ "$changed" = yes ]; then run systemctl restart "$unit"; else run systemctl start "$unit"; fi
    say "$unit is running: journalctl -u $unit -f"
  else
    say "systemd is not running here: $unit is enabled for the next boot, not started"
  fi
fi
if [ "$role" = hub ]; then
  say "done. Make a join token for each agent with: bramble token create"
else
  say "done. The node appears in \`bramble get nodes\` on the hub once it has joined"
fi
