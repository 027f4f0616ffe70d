#!/usr/bin/env bash
# Prepare this checkout to build, test and mount: check Node.js, install the FUSE 2 runtime and
# the native build tools when they are missing, install npm dependencies when the lockfile is
# newer, and build dist/.
# Safe to run again: steps that are already done are skipped, except the build.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# The same minimum as "engines" in package.json, because undici 7 requires Node.js 20.18.1.
min_node_version="20.18.1"

log() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }

check_node() {
  if ! command -v node >/dev/null 2>&1; then
    fail "node not found on PATH. Install Node.js ${min_node_version} or newer and run this script again."
  fi
  local version
  version="$(node -p 'process.versions.node')"
  # sort -V puts the lower version first. If that is not the minimum, Node.js is too old.
  local lowest
  lowest="$(printf '%s\n%s\n' "$min_node_version" "$version" | sort -V | sed -n 1p)"
  if [ "$lowest" != "$min_node_version" ]; then
    fail "Node.js ${version} at $(command -v node) is too old: dropbox-mount needs ${min_node_version} or newer."
  fi
  log "Node.js ${version}"
}

has_libfuse2() {
  local ldconfig
  ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
  # grep without -q reads all input, so ldconfig never gets SIGPIPE, which pipefail would report.
  "$ldconfig" -p 2>/dev/null | grep 'libfuse\.so\.2 ' >/dev/null
}

check_fuse() {
  if command -v fusermount >/dev/null 2>&1 && has_libfuse2; then
    log "fusermount and libfuse.so.2 found"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    fail "fusermount or libfuse.so.2 is missing. Install them as root: apt-get install fuse libfuse2"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "fusermount or libfuse.so.2 is missing, and apt-get is not available." \
      "Install your distribution's FUSE 2 packages, which provide fusermount and libfuse.so.2."
  fi
  log "installing fuse and libfuse2 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y fuse libfuse2
}

# npm ci rebuilds fuse-native from patched source (scripts/build-fuse-native.sh) with node-gyp,
# which needs make, g++ and python3. The FUSE headers come from npm, so libfuse-dev is not needed.
check_build_tools() {
  local missing=() tool
  for tool in make g++ python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "make, g++ and python3 found"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    fail "${missing[*]} missing: npm ci needs them to build fuse-native." \
      "Install them as root: apt-get install make g++ python3"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "${missing[*]} missing, and apt-get is not available." \
      "Install make, a C++ compiler and Python 3, which node-gyp needs to build fuse-native."
  fi
  log "installing make, g++ and python3 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y make g++ python3
}

install_dependencies() {
  # npm writes node_modules/.package-lock.json on every install, so a lockfile newer than it
  # means the installed tree is out of date.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dependencies (npm ci)"
    npm ci
  else
    log "npm dependencies up to date"
  fi
}

check_node
check_fuse
check_build_tools
install_dependencies
log "building (npm run build)"
npm run build
if [ ! -e /dev/fuse ]; then
  log "warning: /dev/fuse is missing, so this machine cannot mount; mount tests will be skipped"
fi
log "done"
