/**
 * Mounting and unmounting with fuse-native. Mount options are chosen here, each with its reason.
 * Unmounting runs fusermount without a shell: fuse-native's own unmount passes the mountpoint
 * through `exec`, where a `$` or a backtick in the path would be run as shell code.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import Fuse from 'fuse-native';
import type { Logger } from '../log/logger.js';
import type { DropboxFilesystem } from '../fs/filesystem.js';
import { createOps } from './ops.js';

export interface MountOptions {
  mountpoint: string;
  fs: DropboxFilesystem;
  log: Logger;
  /** Seconds the kernel caches attributes and names before asking again. */
  attrTimeoutSeconds: number;
  /** Milliseconds an op may take before it fails with EIO. */
  opDeadlineMs: number;
  /** Text shown as the source in `mount` and `df`. */
  fsname: string;
  /** FUSE `allow_other`: users other than the daemon's may use the mount. */
  allowOther?: boolean;
  /** FUSE `default_permissions`: the kernel checks the reported modes and owners itself. */
  defaultPermissions?: boolean;
  /** Called with the byte count of every completed read, for the status figures. */
  onBytesRead?: (bytes: number) => void;
  /** Milliseconds close and fsync may take to commit a file. */
  commitDeadlineMs?: number;
}

export interface Mounted {
  unmount(): Promise<void>;
}

// Options fuse-native has no setting for, added to its -o string.
// - max_background and congestion_threshold: the kernel's default of 12 background requests
//   caps parallel buffered reads. With 64 parallel readers each waiting 100 ms, raising it cut
//   the wall time from 0.63 s to 0.20 s (measured on this binding, libfuse 2.9.9, 2 vCPUs).
// - big_writes: without it the kernel sends writes in 4 KiB requests (18-27 MB/s measured on
//   this binding); with it, 128 KiB requests (144-420 MB/s).
// - ro, on a read-only mount only: the kernel rejects writes itself, and access(W_OK) and the
//   mount table show read-only.
function extraMountOptions(readOnly: boolean): string[] {
  const options = ['max_background=64', 'congestion_threshold=48', 'big_writes'];
  return readOnly ? ['ro', ...options] : options;
}

class DropboxFuse extends Fuse {
  readonly #extra: string;

  constructor(mountpoint: string, ops: ConstructorParameters<typeof Fuse>[1], options: ConstructorParameters<typeof Fuse>[2], extra: string[]) {
    super(mountpoint, ops, options);
    this.#extra = extra.join(',');
  }

  override _fuseOptions(): string {
    const base = super._fuseOptions();
    return base ? `${base},${this.#extra}` : `-o${this.#extra}`;
  }
}

export async function mount(options: MountOptions): Promise<Mounted> {
  const { mountpoint, fs, log } = options;
  await clearStaleMount(mountpoint, log);
  const ops = createOps(fs, {
    log,
    deadlineMs: options.opDeadlineMs,
    commitDeadlineMs: options.commitDeadlineMs,
    onBytesRead: options.onBytesRead,
  });
  const fuse = new DropboxFuse(mountpoint, ops, {
    force: false,
    mkdir: false,
    // runOp enforces its own deadline with EIO; fuse-native's timer would race it.
    timeout: false,
    // Keep the page cache across opens while size and mtime are unchanged, so a re-read of an
    // unchanged file costs no request. A new rev usually changes the mtime or size, which
    // drops it (docs/SEMANTICS.md names the exception). Handles of two revs open at once share
    // this cache, so PageCacheGuard (src/fs/page-cache-guard.ts) gives some of them direct_io.
    autoCache: true,
    // The kernel caches attributes and names this long. fuse-native drops the option when it
    // is 0, so 0 means the libfuse default of 1 s.
    attrTimeout: options.attrTimeoutSeconds,
    entryTimeout: options.attrTimeoutSeconds,
    // fuse-native puts this value into the -o string unquoted, so a comma would start a new
    // mount option: keep it to safe characters.
    fsname: options.fsname.replace(/[^A-Za-z0-9_.:/@-]/g, '_'),
    subtype: 'dropbox-mount',
    allowOther: options.allowOther ?? false,
    defaultPermissions: options.defaultPermissions ?? false,
  }, extraMountOptions(!fs.writable));
  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => (err ? reject(err) : resolve()));
  });
  return { unmount: () => unmount(mountpoint, log) };
}

/**
 * Clears a mount left by a daemon that was killed: stat then fails with ENOTCONN ("Transport
 * endpoint is not connected"), and mounting over it would fail.
 */
async function clearStaleMount(mountpoint: string, log: Logger): Promise<void> {
  try {
    await stat(mountpoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') return;
    log.info({ mountpoint }, 'clearing a stale mount left by an earlier daemon');
    await runUnmountCommand(mountpoint, true);
  }
}

// How long shutdown waits for open files to close before it detaches the mount anyway.
const UNMOUNT_GRACE_MS = 3_000;
const UNMOUNT_RETRY_MS = 250;

/**
 * Unmounts with a plain `fusermount -u` while files are open elsewhere for up to
 * UNMOUNT_GRACE_MS, so that reads in progress can finish, then lazily (`-z`): the mount leaves
 * the tree at once and goes away when the last file closes.
 */
async function unmount(mountpoint: string, log: Logger): Promise<void> {
  const deadline = Date.now() + UNMOUNT_GRACE_MS;
  while (Date.now() < deadline) {
    try {
      await runUnmountCommand(mountpoint, false);
      return;
    } catch {
      if (!(await isMounted(mountpoint))) break;
      await new Promise((resolve) => setTimeout(resolve, UNMOUNT_RETRY_MS));
    }
  }
  try {
    if (await isMounted(mountpoint)) {
      log.info({ mountpoint, graceMs: UNMOUNT_GRACE_MS }, 'mountpoint still busy, detaching it lazily');
    }
    await runUnmountCommand(mountpoint, true);
  } catch (err) {
    // Someone ran `fusermount -u` before us: the mount is gone, which is what was wanted.
    if (!(await isMounted(mountpoint))) {
      log.info({ mountpoint }, 'mountpoint was already unmounted');
      return;
    }
    throw err;
  }
}

// Lazy unmount (-z) detaches the mount even while files are open, so after the grace period
// shutdown does not wait for a program that keeps one open.
function runUnmountCommand(mountpoint: string, lazy: boolean): Promise<void> {
  const [command, args] =
    process.platform === 'darwin'
      ? ['diskutil', lazy ? ['unmount', 'force', mountpoint] : ['unmount', mountpoint]]
      : ['fusermount', [lazy ? '-uz' : '-u', mountpoint]];
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Tells whether `mountpoint` is listed in /proc/self/mounts; false where that file is absent. */
async function isMounted(mountpoint: string): Promise<boolean> {
  let table: string;
  try {
    table = await readFile('/proc/self/mounts', 'utf8');
  } catch {
    return false;
  }
  // The kernel escapes space, tab, newline and backslash in mount paths as octal.
  const escaped = mountpoint.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return table.split('\n').some((line) => line.split(' ')[1] === escaped);
}
