/**
 * Paths of the daemons' status sockets. The folder is private to the user (mode 0700) and the
 * socket name is a hash of the resolved mountpoint, so `dropbox-mount status MOUNTPOINT` finds
 * the daemon that serves MOUNTPOINT without any other lookup.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Returns the folder for status sockets: $XDG_RUNTIME_DIR/dropbox-mount, else
 * /run/user/UID/dropbox-mount when that runtime folder exists, else
 * TMPDIR/dropbox-mount-UID.
 */
export function statusSocketDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtimeDir = env.XDG_RUNTIME_DIR;
  if (runtimeDir !== undefined && runtimeDir !== '') return join(runtimeDir, 'dropbox-mount');
  const uid = process.getuid?.() ?? 0;
  const userRuntimeDir = `/run/user/${uid}`;
  if (existsSync(userRuntimeDir)) return join(userRuntimeDir, 'dropbox-mount');
  return join(tmpdir(), `dropbox-mount-${uid}`);
}

/**
 * Returns every path where a daemon may have put the socket for `mountpoint`, the one
 * statusSocketPath chooses first. A daemon started by systemd can have another
 * XDG_RUNTIME_DIR than the shell that runs `status`, or none.
 */
export function statusSocketCandidates(mountpoint: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const name = socketName(mountpoint);
  const uid = process.getuid?.() ?? 0;
  const dirs = [
    statusSocketDir(env),
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'dropbox-mount')] : []),
    `/run/user/${uid}/dropbox-mount`,
    join(tmpdir(), `dropbox-mount-${uid}`),
  ];
  return [...new Set(dirs)].map((dir) => join(dir, name));
}

/** Returns the socket path for `mountpoint`: the folder above and 16 hex digits of its SHA-256. */
export function statusSocketPath(mountpoint: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(statusSocketDir(env), socketName(mountpoint));
}

function socketName(mountpoint: string): string {
  // A Unix socket path is limited to 107 bytes on Linux, so the name is a short hash.
  const hash = createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 16);
  return `${hash}.sock`;
}
