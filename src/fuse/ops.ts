/**
 * The fuse-native op table: one small wrapper per op that passes the call to DropboxFilesystem
 * and replies through runOp. On a read-only mount every op that changes something returns EROFS.
 */
import type { Deadline } from '../fs/deadline.js';
import { releaseReplyBuffer } from '../read/reply-buffers.js';
import type { DropboxFilesystem } from '../fs/filesystem.js';
import { Errno, FsError } from '../fs/errno.js';
import { runOp, type OpContext } from './op-runner.js';
import { StalledReads } from './stalled-reads.js';

type Callback = (...args: unknown[]) => void;

const W_OK = 2;
// Open flag of the patched fuse-native: the handle gets FUSE direct_io, so the kernel sends its
// reads to the daemon instead of serving them from the page cache that all handles share.
const OPEN_DIRECT_IO = 1;
type Op = (...args: never[]) => void;

// Ops Dropbox has nothing for: hard links, symbolic links and device nodes. EPERM is what
// programs with a rename fallback (git links, then renames) expect.
const UNSUPPORTED_OPS = ['link', 'symlink', 'mknod'] as const;
// Extended attributes: cp, sed and rsync take ENOTSUP to mean the filesystem has none and go
// on silently, where EPERM would be reported as a failure to keep ACLs.
const XATTR_OPS = ['setxattr', 'removexattr'] as const;

// Every op that changes something; on a read-only mount they all return EROFS.
const WRITE_OPS = [
  'create',
  'write',
  'truncate',
  'ftruncate',
  'unlink',
  'mkdir',
  'rmdir',
  'rename',
  'chmod',
  'chown',
  'utimens',
  ...UNSUPPORTED_OPS,
  ...XATTR_OPS,
] as const;

export function createOps(fs: DropboxFilesystem, context: OpContext): Record<string, Op> {
  const stalledReads = new StalledReads(context.deadlineMs);
  // Commits upload a whole file, so close and fsync get the longer commit deadline.
  const commitContext: OpContext = { ...context, deadlineMs: context.commitDeadlineMs ?? context.deadlineMs };
  const ops: Record<string, Op> = {
    getattr: (path: string, cb: Callback) =>
      runOp(context, 'getattr', path, cb, async () => [0, await fs.getattr(path)]),

    readdir: (path: string, cb: Callback) =>
      runOp(context, 'readdir', path, cb, async () => {
        const { names, stats } = await fs.readdir(path);
        return [0, names, stats];
      }),

    // The third value goes to the patched fuse-native (patches/fuse-native+2.2.6.patch).
    open: (path: string, flags: number, cb: Callback) =>
      runOp(context, 'open', path, cb, async (signal) => {
        const fh = await keepIfAnswered(fs, signal, fs.open(path, flags, signal));
        return [0, fh, fs.bypassesPageCache(fh) ? OPEN_DIRECT_IO : 0];
      }),

    read: (path: string, fh: number, buf: Buffer, length: number, position: number, cb: Callback) =>
      runOp(context, 'read', path, cb, async () => {
        if (stalledReads.isStalled(fh)) {
          throw new FsError(Errno.EIO, `${path}: an earlier read on this handle is still stalled past the op deadline`);
        }
        const data = await stalledReads.track(fh, () => fs.read(fh, position, length));
        // The kernel's buffer is only valid until the reply, so the copy happens in the reply
        // step, which runOp skips when the deadline has already replied.
        return () => {
          const copied = data.copy(buf, 0, 0, Math.min(data.length, length));
          releaseReplyBuffer(data);
          context.onBytesRead?.(copied);
          return [copied];
        };
      }),

    release: (path: string, fh: number, cb: Callback) =>
      runOp(context, 'release', path, cb, async () => {
        await fs.release(fh);
        return [0];
      }),

    // Write access is rejected here on a read-only mount as well as by the `ro` mount option,
    // because access(2) returns this op's result when the kernel does not check permissions.
    access: (path: string, mode: number, cb: Callback) =>
      runOp(context, 'access', path, cb, async () => {
        await fs.getattr(path);
        return [(mode & W_OK) !== 0 && !fs.writable ? -Errno.EROFS : 0];
      }),

    statfs: (path: string, cb: Callback) =>
      runOp(context, 'statfs', path, cb, async () => [0, await fs.statfs()]),

    flush: (path: string, fh: number, cb: Callback) =>
      runOp(commitContext, 'flush', path, cb, async () => {
        await fs.flush(fh);
        return [0];
      }),

    fsync: (path: string, _datasync: number, fh: number, cb: Callback) =>
      runOp(commitContext, 'fsync', path, cb, async () => {
        await fs.fsync(fh);
        return [0];
      }),

    fsyncdir: (path: string, _datasync: number, _fh: number, cb: Callback) =>
      runOp(context, 'fsyncdir', path, cb, async () => [0]),
  };
  if (!fs.writable) {
    for (const name of WRITE_OPS) ops[name] = rejectWith(context, name, Errno.EROFS);
    return ops;
  }
  for (const name of UNSUPPORTED_OPS) ops[name] = rejectWith(context, name, Errno.EPERM);
  for (const name of XATTR_OPS) ops[name] = rejectWith(context, name, Errno.ENOTSUP);
  Object.assign(ops, {
    create: (path: string, _mode: number, cb: Callback) =>
      runOp(context, 'create', path, cb, async (signal) => [0, await keepIfAnswered(fs, signal, fs.create(path, signal))]),

    // The kernel's buffer is only valid until the reply; DropboxFilesystem.write copies it
    // before anything that waits.
    write: (path: string, fh: number, buf: Buffer, length: number, position: number, cb: Callback) =>
      runOp(context, 'write', path, cb, async (signal) => [await fs.write(fh, buf.subarray(0, length), position, signal)]),

    truncate: (path: string, size: number, cb: Callback) =>
      runOp(context, 'truncate', path, cb, async (signal) => {
        await fs.truncate(path, size, signal);
        return [0];
      }),

    ftruncate: (path: string, fh: number, size: number, cb: Callback) =>
      runOp(context, 'ftruncate', path, cb, async (signal) => {
        await fs.ftruncate(fh, size, signal);
        return [0];
      }),

    utimens: (path: string, _atime: number, mtime: number, cb: Callback) =>
      runOp(context, 'utimens', path, cb, async () => {
        await fs.utimens(path, mtime);
        return [0];
      }),

    chmod: (path: string, _mode: number, cb: Callback) =>
      runOp(context, 'chmod', path, cb, async () => {
        await fs.chmod(path);
        return [0];
      }),

    chown: (path: string, _uid: number, _gid: number, cb: Callback) =>
      runOp(context, 'chown', path, cb, async () => {
        await fs.chmod(path);
        return [0];
      }),

    unlink: (path: string, cb: Callback) =>
      runOp(context, 'unlink', path, cb, async (signal) => {
        await fs.unlink(path, signal);
        return [0];
      }),

    mkdir: (path: string, _mode: number, cb: Callback) =>
      runOp(context, 'mkdir', path, cb, async () => {
        await fs.mkdir(path);
        return [0];
      }),

    rmdir: (path: string, cb: Callback) =>
      runOp(context, 'rmdir', path, cb, async () => {
        await fs.rmdir(path);
        return [0];
      }),

    rename: (from: string, to: string, cb: Callback) =>
      runOp(context, 'rename', from, cb, async (signal) => {
        await fs.rename(from, to, signal);
        return [0];
      }),
  });
  return ops;
}

// The kernel never receives a handle that arrives after the deadline replied EIO, so it would
// never be released. Releasing it here closes it as if it had been used.
async function keepIfAnswered(fs: DropboxFilesystem, signal: Deadline, opening: Promise<number>): Promise<number> {
  const fh = await opening;
  if (signal.aborted) await fs.release(fh);
  return fh;
}

function rejectWith(context: OpContext, name: string, errno: number): Op {
  return (...args: unknown[]) => {
    const path = typeof args[0] === 'string' ? args[0] : '';
    const cb = args[args.length - 1] as Callback;
    runOp(context, name, path, cb, async () => [-errno]);
  };
}
