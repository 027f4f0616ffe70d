/**
 * Mounting and unmounting with fuse-native. Mount options are chosen here, each with its reason.
 */
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
  /** Milliseconds an op may take before it is answered with EIO. */
  opDeadlineMs: number;
  /** Text shown as the source in `mount` and `df`. */
  fsname: string;
}

export interface Mounted {
  unmount(): Promise<void>;
}

export function mount(options: MountOptions): Promise<Mounted> {
  const { mountpoint, fs, log } = options;
  const ops = createOps(fs, { log, deadlineMs: options.opDeadlineMs });
  const fuse = new Fuse(mountpoint, ops, {
    // A mount left by a killed daemon ("Transport endpoint is not connected") is cleared first.
    force: true,
    mkdir: false,
    // runOp enforces its own deadline with EIO; fuse-native's timer would race it.
    timeout: false,
    // Keep the page cache across opens while size and mtime are unchanged, so a re-read of an
    // unchanged file costs no request; a new rev changes the mtime or size and drops it.
    autoCache: true,
    // The kernel caches attributes and names this long. fuse-native drops the option when it
    // is 0, so 0 means the libfuse default of 1 s.
    attrTimeout: options.attrTimeoutSeconds,
    entryTimeout: options.attrTimeoutSeconds,
    // fuse-native puts this value into the -o string unquoted, so a comma would start a new
    // mount option: keep it to safe characters.
    fsname: options.fsname.replace(/[^A-Za-z0-9_.:/@-]/g, '_'),
    subtype: 'dropbox-mount',
  });
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) {
        reject(err);
        return;
      }
      resolve({ unmount: () => unmount(fuse, log) });
    });
  });
}

function unmount(fuse: Fuse, log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    fuse.unmount((err) => {
      if (err) {
        log.warn({ mountpoint: fuse.mnt, err: String(err) }, 'unmount failed');
        reject(err);
        return;
      }
      resolve();
    });
  });
}
