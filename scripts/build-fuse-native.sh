#!/usr/bin/env bash
# Rebuild fuse-native's native addon from its patched C source with node-gyp, then check that
# node-gyp-build loads the new build/Release/fuse.node instead of the prebuilt addon. The
# prebuilt addon in node_modules/fuse-native/prebuilds is built from the unpatched source.
#
# Runs from "postinstall" in package.json, after patch-package has applied patches/, so it
# inherits npm's environment: npm_config_node_gyp (the node-gyp bundled with npm) and
# npm_config_nodedir (local Node.js headers, so the build needs no download).
#
# The build compiles against the FUSE 2.9 headers bundled in the npm package
# fuse-shared-library-linux and links libfuse.so.2 by soname, so it needs make, g++ and
# python3 but not libfuse-dev. Loading the addon needs libfuse.so.2 (Debian package libfuse2).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'build-fuse-native: %s\n' "$*"; }
fail() { printf 'build-fuse-native: %s\n' "$*" >&2; exit 1; }

if [ "$(uname -s)" != "Linux" ]; then
  # NOTE: on other systems fuse-native keeps its prebuilt addon, which passes the access time
  # to utimens in place of the modification time.
  log "skipped on $(uname -s): only the Linux addon is rebuilt from the patched source"
  exit 0
fi

missing=()
for tool in make g++ python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  fail "cannot build fuse-native from source: ${missing[*]} not found on PATH." \
    "Install the build tools as root (apt-get install make g++ python3) and run npm ci again."
fi

if [ -n "${npm_config_node_gyp:-}" ]; then
  node_gyp=(node "$npm_config_node_gyp")
elif command -v node-gyp >/dev/null 2>&1; then
  node_gyp=(node-gyp)
else
  fail "node-gyp not found: run this script through npm (npm ci, or npm run postinstall)," \
    "which provides the node-gyp bundled with npm."
fi

package_dir="$(node -p "require('node:path').dirname(require.resolve('fuse-native/package.json'))")"
log "rebuilding ${package_dir} with ${node_gyp[*]}"
(cd "$package_dir" && "${node_gyp[@]}" rebuild)

expected="${package_dir}/build/Release/fuse.node"
# node-gyp-build looks in build/Release before prebuilds/, unless PREBUILDS_ONLY is set.
loaded="$(cd "$package_dir" && node -p "require('node-gyp-build').resolve('.')")"
if [ "$loaded" != "$expected" ]; then
  fail "node-gyp-build resolves fuse-native to ${loaded}, not the source build ${expected}." \
    "Unset PREBUILDS_ONLY and FUSE_NATIVE_PREBUILD, then run npm ci again."
fi

if ! load_error="$(node -e "require('fuse-native')" 2>&1)"; then
  fail "the rebuilt addon ${expected} failed to load: ${load_error}." \
    "If libfuse.so.2 is missing, install it as root: apt-get install fuse libfuse2"
fi
log "fuse-native now loads ${expected}"
