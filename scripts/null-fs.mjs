// A null filesystem on fuse-native: one file, /zero, whose read() fills the kernel's buffer
// with zeros and does no I/O. It measures the ceiling of the FUSE binding itself, the
// fastest any filesystem on this binding can be read.
//
// Usage: node scripts/null-fs.mjs MOUNTPOINT [SIZE_BYTES]
// SIZE_BYTES is the size of /zero; default 1 GiB. Prints "mounted MOUNTPOINT" once mounted,
// unmounts on SIGINT or SIGTERM and exits 0. The folder must exist and be empty.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Fuse = require('fuse-native');

const FILE_PATH = '/zero';
const DEFAULT_SIZE_BYTES = 1024 ** 3;

const [mountpoint, sizeText] = process.argv.slice(2);
if (mountpoint === undefined) {
  console.error('usage: node scripts/null-fs.mjs MOUNTPOINT [SIZE_BYTES]');
  process.exit(2);
}
const sizeBytes = sizeText === undefined ? DEFAULT_SIZE_BYTES : Number(sizeText);
if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
  console.error(`SIZE_BYTES "${sizeText}" is invalid; pass a whole number of bytes`);
  process.exit(2);
}

const mountedAt = new Date();
const ids = { uid: process.getuid(), gid: process.getgid() };
const times = { mtime: mountedAt, atime: mountedAt, ctime: mountedAt };
const folderStat = { ...times, ...ids, nlink: 2, size: 4096, mode: 0o40755 };
const fileStat = { ...times, ...ids, nlink: 1, size: sizeBytes, mode: 0o100444 };

const ops = {
  getattr(path, cb) {
    if (path === '/') return cb(0, folderStat);
    if (path === FILE_PATH) return cb(0, fileStat);
    return cb(Fuse.ENOENT);
  },
  readdir(path, cb) {
    if (path === '/') return cb(0, [FILE_PATH.slice(1)], [fileStat]);
    return cb(Fuse.ENOENT);
  },
  open(path, flags, cb) {
    if (path === FILE_PATH) return cb(0, 1);
    return cb(Fuse.ENOENT);
  },
  release(path, fd, cb) {
    cb(0);
  },
  read(path, fd, buf, len, pos, cb) {
    const count = Math.max(0, Math.min(len, sizeBytes - pos));
    buf.fill(0, 0, count);
    cb(count);
  },
};

// `force` clears a stale mount left by a killed run; `autoUnmount` makes the kernel unmount
// if this process dies without running the handlers below (SIGKILL).
const fuse = new Fuse(mountpoint, ops, { force: true, autoUnmount: true });

let mounted = false;
let unmounting = false;
function unmountAndExit(reason) {
  if (unmounting) return;
  unmounting = true;
  fuse.unmount((error) => {
    if (error) console.error(`unmount of ${mountpoint} after ${reason} failed: ${error.message}`);
    mounted = false;
    process.exit(error ? 1 : 0);
  });
}

// Any other exit (process.exit elsewhere, the end of the event loop) can only run synchronous
// code, so the lazy unmount that fuse.unmount would run is run directly.
process.on('exit', () => {
  if (mounted) spawnSync('fusermount', ['-uz', mountpoint]);
});

process.on('SIGINT', () => unmountAndExit('SIGINT'));
process.on('SIGTERM', () => unmountAndExit('SIGTERM'));
process.on('uncaughtException', (error) => {
  console.error(error);
  unmountAndExit('an uncaught exception');
});

fuse.mount((error) => {
  if (error) {
    console.error(`mount on ${mountpoint} failed: ${error.message}`);
    process.exit(1);
  }
  mounted = true;
  console.log(`mounted ${mountpoint}`);
});
