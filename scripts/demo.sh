#!/usr/bin/env bash
# Mount the bundled demo/ tree through the local Dropbox API emulator and keep it mounted until
# Ctrl-C. Usage: scripts/demo.sh [MOUNTPOINT]   (default: ./.demo/mnt)
# The emulator serves a temporary copy of demo/, so nothing in the repository is written.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

start_timeout_seconds=20

log() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }

if [ ! -c /dev/fuse ]; then
  fail "/dev/fuse is missing, so this machine cannot mount FUSE filesystems. On a VM or host, run 'modprobe fuse' as root. In a container, start it with '--device /dev/fuse --cap-add SYS_ADMIN'."
fi

bash scripts/setup.sh

default_mountpoint="$repo_root/.demo/mnt"
mountpoint_arg="${1:-$default_mountpoint}"
# realpath -m resolves the path without opening it, which fails on a stale FUSE mount.
mountpoint_path="$(realpath -m "$mountpoint_arg")"

is_mounted() {
  # /proc/self/mounts escapes a space in a path as \040.
  # ENVIRON, unlike awk -v, passes the backslashes through unchanged.
  MOUNTPOINT_ESCAPED="${mountpoint_path// /\\040}" \
    awk '$2 == ENVIRON["MOUNTPOINT_ESCAPED"] { found = 1 } END { exit !found }' /proc/self/mounts
}

if is_mounted; then
  # On a mount whose daemon is gone (a killed run), stat fails with "Transport endpoint is
  # not connected". A stat that succeeds means a live daemon, which this script must not stop.
  if timeout 5 stat "$mountpoint_path" >/dev/null 2>&1; then
    fail "$mountpoint_path is already mounted. Stop the program using it, or choose another folder: scripts/demo.sh /path/to/empty/folder"
  fi
  log "unmounting a stale mount at $mountpoint_path"
  fusermount -uz "$mountpoint_path"
fi

created_mountpoint=0
if [ ! -d "$mountpoint_path" ]; then
  mkdir -p "$mountpoint_path"
  created_mountpoint=1
fi
if [ -n "$(ls -A "$mountpoint_path")" ]; then
  fail "$mountpoint_path is not empty. Choose an empty folder: scripts/demo.sh /path/to/empty/folder"
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/dropbox-mount-demo.XXXXXX")"
emulator_pid=""
daemon_pid=""

stop_process() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "process $pid did not stop within 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo
  if [ -n "$daemon_pid" ]; then
    log "unmounting $mountpoint_path"
    stop_process "$daemon_pid"
  fi
  if is_mounted; then
    fusermount -uz "$mountpoint_path" || log "fusermount -uz $mountpoint_path failed"
  fi
  if [ -n "$emulator_pid" ]; then
    log "stopping the emulator"
    stop_process "$emulator_pid"
  fi
  rm -rf "$work_dir"
  if [ "$created_mountpoint" -eq 1 ]; then
    rmdir "$mountpoint_path" 2>/dev/null || true
    if [ "$mountpoint_arg" = "$default_mountpoint" ]; then
      rmdir "$repo_root/.demo" 2>/dev/null || true
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until FILE contains PATTERN (grep -E). Fails with LOG_FILE's contents if PID exits
# first or the pattern does not appear within the start timeout.
wait_for_line() {
  local file="$1" pattern="$2" pid="$3" process_name="$4" log_file="$5"
  local deadline=$((SECONDS + start_timeout_seconds))
  until grep -qE "$pattern" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log_file" >&2
      fail "the $process_name exited before it was ready. Its log is above."
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      cat "$log_file" >&2
      fail "the $process_name was not ready after ${start_timeout_seconds} s. Its log is above."
    fi
    sleep 0.1
  done
}

# -p keeps modification times, which the mount shows.
cp -Rp demo "$work_dir/data"
config_file="$work_dir/config.json"

log "starting the emulator on 127.0.0.1"
node dist/cli/main.js emulator --data "$work_dir/data" --host 127.0.0.1 \
  --write-config "$config_file" >"$work_dir/emulator.out" 2>"$work_dir/emulator.log" &
emulator_pid=$!
wait_for_line "$work_dir/emulator.out" '^emulator listening on ' "$emulator_pid" emulator \
  "$work_dir/emulator.log"
wait_for_line "$config_file" '[{]' "$emulator_pid" emulator "$work_dir/emulator.log"
emulator_url="$(sed -n 's/^emulator listening on //p' "$work_dir/emulator.out")"

log "mounting at $mountpoint_path"
node dist/cli/main.js "$mountpoint_path" --config "$config_file" --cache-dir "$work_dir/cache" \
  2>"$work_dir/daemon.log" &
daemon_pid=$!
wait_for_line "$work_dir/daemon.log" '"msg":"mounted"' "$daemon_pid" daemon "$work_dir/daemon.log"

cat <<EOF

The demo tree is mounted at $mountpoint_path
(served by the emulator at $emulator_url from a copy of demo/, so writes change only the copy).

Try, in another terminal:
  ls -l "$mountpoint_path"
  cat "$mountpoint_path/README.txt"
  find "$mountpoint_path" -type f
  sha256sum "$mountpoint_path/Recipes/"*
  echo hello > "$mountpoint_path/new-file"; ls -l "$mountpoint_path"
  mkdir "$mountpoint_path/Inbox" && mv "$mountpoint_path/new-file" "$mountpoint_path/Inbox/"
  ls -l "$work_dir/data/Inbox"           # the emulator's copy, as Dropbox would have it

Daemon log: $work_dir/daemon.log
Press Ctrl-C to unmount and clean up.
EOF

# The wait returns when the daemon exits on its own. Ctrl-C interrupts it and runs cleanup.
set +e
wait "$daemon_pid"
daemon_status=$?
set -e
daemon_pid=""
if [ "$daemon_status" -ne 0 ]; then
  cat "$work_dir/daemon.log" >&2
  fail "the daemon exited with status $daemon_status. Its log is above."
fi
