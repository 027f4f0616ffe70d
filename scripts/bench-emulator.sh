#!/usr/bin/env bash
# Compares the emulator's unshaped download speed with the ceiling of the FUSE binding:
# 1. curl downloads a 1 GiB file from `dropbox-mount emulator` over 127.0.0.1 to /dev/null,
#    once cold (the emulator hashes the file for Dropbox-API-Result first) and then warm;
# 2. dd reads 1 GiB with bs=1M from scripts/null-fs.mjs, whose read() only fills the buffer.
# Rounds alternate the two, because timing on shared VMs drifts between runs.
# Usage: scripts/bench-emulator.sh [ROUNDS]   (default 3; needs curl, dd, fusermount, /dev/fuse)
# The CLI is dist/cli/main.js (run `npm run build` first) or the file named by DROPBOX_MOUNT_CLI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="${DROPBOX_MOUNT_CLI:-$repo_root/dist/cli/main.js}"
rounds="${1:-3}"
size_mib=1024

work="$(mktemp -d -t dropbox-mount-bench.XXXXXX)"
emulator_pid=""
null_fs_pid=""
cleanup() {
  if [ -n "$null_fs_pid" ]; then kill -TERM "$null_fs_pid" 2>/dev/null || true; wait "$null_fs_pid" 2>/dev/null || true; fi
  if mountpoint -q "$work/mnt" 2>/dev/null; then fusermount -uz "$work/mnt" || true; fi
  if [ -n "$emulator_pid" ]; then kill -TERM "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data" "$work/mnt"
dd if=/dev/urandom of="$work/data/big.bin" bs=1M count="$size_mib" status=none

secret="bench-secret"
refresh="bench-refresh-token"
node "$cli" emulator --data "$work/data" --app-secret "$secret" --refresh-token "$refresh" \
  >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/emulator.out" && break; sleep 0.1; done
url="$(sed -n 's/^emulator listening on //p' "$work/emulator.out")"
token="$(curl -sf -X POST "$url/oauth2/token" \
  -d "grant_type=refresh_token&refresh_token=$refresh&client_id=emulator-app-key&client_secret=$secret" |
  sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"

# Prints "<bytes> <seconds>" for one download of the whole file.
download() {
  curl -sf -o /dev/null -w '%{size_download} %{time_total}\n' -X POST "$url/2/files/download" \
    -H "Authorization: Bearer $token" -H 'Dropbox-API-Arg: {"path":"/big.bin"}'
}
# Prints MiB/s for "<bytes> <seconds>".
rate() { awk '{ printf "%.0f", $1 / $2 / 1048576 }'; }

echo "cold emulator download (includes hashing): $(download | rate) MiB/s"

node "$repo_root/scripts/null-fs.mjs" "$work/mnt" $((size_mib * 1048576)) >"$work/null-fs.out" 2>&1 &
null_fs_pid=$!
for _ in $(seq 100); do grep -q '^mounted' "$work/null-fs.out" && break; sleep 0.1; done

for round in $(seq "$rounds"); do
  emulator_rate="$(download | rate)"
  started="$(date +%s.%N)"
  dd if="$work/mnt/zero" of=/dev/null bs=1M count="$size_mib" status=none
  ended="$(date +%s.%N)"
  null_fs_rate="$(awk -v bytes=$((size_mib * 1048576)) -v from="$started" -v to="$ended" \
    'BEGIN { printf "%.0f", bytes / (to - from) / 1048576 }')"
  echo "round $round: emulator curl $emulator_rate MiB/s, null fs dd $null_fs_rate MiB/s"
done
