/**
 * The fuse-native op table: one small wrapper per op that passes the call to DropboxFilesystem
 * and replies through runOp. Write ops return EROFS, because this mount is read-only.
 */
import { releaseReplyBuffer } from '../read/reply-buffers.js';
import type { DropboxFilesystem } from '../fs/filesystem.js';
import { Errno, FsError } from '../fs/errno.js';
import { runOp, type OpContext } from './op-runner.js';
import { StalledReads } from './stalled-reads.js';

type Callback = (...args: unknown[]) => void;

const W_OK = 2;
type Op = (...args: never[]) => void;

const WRITE_OPS = [
  'create',
  'write',
  'truncate',
  'ftruncate',
  'unlink',
  'mkdir',
  'rmdir',
  'rename',
  'link',
  'symlink',
  'mknod',
  'chmod',
  'chown',
  'utimens',
  'setxattr',
  'removexattr',
] as const;

export function createOps(fs: DropboxFilesystem, context: OpContext): Record<string, Op> {
  const stalledReads = new StalledReads(context.deadlineMs);
  const ops: Record<string, Op> = {
    getattr: (path: string, cb: Callback) =>
      runOp(context, 'getattr', path, cb, async () => [0, await fs.getattr(path)]),

    readdir: (path: string, cb: Callback) =>
      runOp(context, 'readdir', path, cb, async () => {
        const { names, stats } = await fs.readdir(path);
        return [0, names, stats];
      }),

    open: (path: string, flags: number, cb: Callback) =>
      runOp(context, 'open', path, cb, async () => [0, await fs.open(path, flags)]),

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

    // Write access is rejected here as well as by the `ro` mount option, because access(2)
    // returns this op's result when the kernel does not check permissions itself.
    access: (path: string, mode: number, cb: Callback) =>
      runOp(context, 'access', path, cb, async () => {
        await fs.getattr(path);
        return [(mode & W_OK) !== 0 ? -Errno.EROFS : 0];
      }),

    statfs: (path: string, cb: Callback) =>
      runOp(context, 'statfs', path, cb, async () => [0, await fs.statfs()]),
  };
  for (const name of WRITE_OPS) {
    ops[name] = (...args: unknown[]) => {
      const path = typeof args[0] === 'string' ? args[0] : '';
      const cb = args[args.length - 1] as Callback;
      runOp(context, name, path, cb, async () => [-Errno.EROFS]);
    };
  }
  return ops;
}
