// Checks the patched fuse-native binding directly, without the daemon or Dropbox: a small
// in-memory filesystem is mounted in this process, and command-line tools act on it.
//
// The handlers run on this process's event loop, so every command runs as a child process
// through run(). A synchronous call on the mount would block the loop and never return.
//
// utimens: fuse-native 2.2.6 as published passes the access time as both utimens arguments.
// patches/fuse-native+2.2.6.patch fixes that, and scripts/build-fuse-native.sh rebuilds the
// addon at npm install. Against the prebuilt addon the mtime checks here fail.
//
// open: the same patch lets open's callback pass a third value, open flags, where 1 sets
// direct_io on that handle only. The published binding ignores the value.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fuse, { type Callback } from 'fuse-native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fuseAvailable, isMounted, run, unmountIfMounted } from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping fuse-native binding tests: ${fuse.reason}`);

const ENOENT = -os.constants.errno.ENOENT;
const EIO = -os.constants.errno.EIO;
const EACCES = -os.constants.errno.EACCES;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const FILE_HANDLE = 42;
// Open flag of the patched binding: the handle gets direct_io.
const OPEN_DIRECT_IO = 1;
const READ_FILE_BYTES = 8192;

// Without big_writes, libfuse 2.9 limits each WRITE request to one 4 KiB page.
const BIG_WRITE_BYTES = 128 * 1024;
const DD_BLOCK_BYTES = 1024 * 1024;
const DD_BLOCK_COUNT = 4;

interface FileNode {
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface UtimensCall {
  path: string;
  atime: number;
  mtime: number;
}

interface ReadCall {
  path: string;
  length: number;
  position: number;
}

interface WriteCall {
  path: string;
  length: number;
  position: number;
}

/** In-memory files at the root of the mount: paths, sizes and times. Every byte read is 'a'. */
class MemoryTree {
  readonly files = new Map<string, FileNode>();
  readonly utimensCalls: UtimensCall[] = [];
  readonly writeCalls: WriteCall[] = [];
  readonly readCalls: ReadCall[] = [];
  readonly handlerErrors: unknown[] = [];
  private readonly rootTimeMs = Date.now();

  addFile(name: string, size = 0): void {
    const now = Date.now();
    this.files.set(`/${name}`, { size, atimeMs: now, mtimeMs: now, ctimeMs: now });
  }

  /**
   * Builds the fuse-native ops. Each handler calls back with an integer result, and a handler
   * that throws calls back with EIO, because fuse-native never replies to a request whose
   * result is not an integer, and the calling process then hangs in uninterruptible sleep.
   */
  ops(): Record<string, (...args: never[]) => void> {
    const guard =
      <Args extends unknown[]>(handler: (...args: Args) => void) =>
      (...args: Args): void => {
        // fuse-native passes the callback last to every op.
        const cb = args[args.length - 1] as Callback;
        try {
          handler(...args);
        } catch (error) {
          this.handlerErrors.push(error);
          cb(EIO);
        }
      };

    return {
      getattr: guard((filePath: string, cb: Callback) => {
        if (filePath === '/') {
          const time = this.rootTimeMs;
          cb(0, { mode: S_IFDIR | 0o755, nlink: 2, size: 0, atime: time, mtime: time, ctime: time });
          return;
        }
        const file = this.files.get(filePath);
        if (file === undefined) {
          cb(ENOENT);
          return;
        }
        cb(0, {
          mode: S_IFREG | 0o644,
          nlink: 1,
          size: file.size,
          atime: file.atimeMs,
          mtime: file.mtimeMs,
          ctime: file.ctimeMs,
        });
      }),
      readdir: guard((filePath: string, cb: Callback) => {
        if (filePath !== '/') {
          cb(ENOENT);
          return;
        }
        cb(0, [...this.files.keys()].map((key) => key.slice(1)));
      }),
      // /direct opens with direct_io. /refused fails with no handle, so the binding has to
      // supply both missing values itself to reply to the kernel.
      open: guard((filePath: string, _flags: number, cb: Callback) => {
        if (filePath === '/refused') {
          cb(EACCES);
          return;
        }
        cb(this.files.has(filePath) ? 0 : ENOENT, FILE_HANDLE, filePath === '/direct' ? OPEN_DIRECT_IO : 0);
      }),
      read: guard(
        (filePath: string, _fd: number, buf: Buffer, length: number, position: number, cb: Callback) => {
          const file = this.files.get(filePath);
          if (file === undefined) {
            cb(ENOENT);
            return;
          }
          this.readCalls.push({ path: filePath, length, position });
          const count = Math.max(0, Math.min(length, file.size - position));
          buf.fill(0x61, 0, count);
          cb(count);
        },
      ),
      release: guard((_filePath: string, _fd: number, cb: Callback) => cb(0)),
      flush: guard((_filePath: string, _fd: number, cb: Callback) => cb(0)),
      truncate: guard((filePath: string, size: number, cb: Callback) => {
        cb(this.resize(filePath, size));
      }),
      ftruncate: guard((filePath: string, _fd: number, size: number, cb: Callback) => {
        cb(this.resize(filePath, size));
      }),
      write: guard(
        (filePath: string, _fd: number, _buf: Buffer, length: number, position: number, cb: Callback) => {
          const file = this.files.get(filePath);
          if (file === undefined) {
            cb(ENOENT);
            return;
          }
          this.writeCalls.push({ path: filePath, length, position });
          file.size = Math.max(file.size, position + length);
          cb(length);
        },
      ),
      utimens: guard((filePath: string, atime: number, mtime: number, cb: Callback) => {
        const file = this.files.get(filePath);
        if (file === undefined) {
          cb(ENOENT);
          return;
        }
        this.utimensCalls.push({ path: filePath, atime, mtime });
        file.atimeMs = atime;
        file.mtimeMs = mtime;
        cb(0);
      }),
    };
  }

  private resize(filePath: string, size: number): number {
    const file = this.files.get(filePath);
    if (file === undefined) return ENOENT;
    file.size = size;
    return 0;
  }
}

/** Adds big_writes, which fuse-native's constructor options cannot express. */
class BigWritesFuse extends Fuse {
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    return base ? `${base},big_writes` : '-obig_writes';
  }
}

function mountFuse(instance: Fuse): Promise<void> {
  return new Promise((resolve, reject) => {
    instance.mount((err) => (err ? reject(err) : resolve()));
  });
}

function unmountFuse(instance: Fuse): Promise<void> {
  return new Promise((resolve, reject) => {
    instance.unmount((err) => (err ? reject(err) : resolve()));
  });
}

/** Reads atime and mtime in ms through the mount with GNU stat. */
async function statTimesMs(file: string): Promise<{ atimeMs: number; mtimeMs: number }> {
  const result = await run('stat', ['--format=%.3X %.3Y', file]);
  expect(result.code, result.stderr).toBe(0);
  const [atime, mtime] = result.stdout.trim().split(' ').map(Number);
  return { atimeMs: Math.round(atime! * 1000), mtimeMs: Math.round(mtime! * 1000) };
}

describe.skipIf(!fuse.ok)('fuse-native binding', () => {
  const tree = new MemoryTree();
  let workDir: string;
  let mountpoint: string;
  let instance: Fuse | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-binding-'));
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(mountpoint);
    tree.addFile('times');
    tree.addFile('big');
    tree.addFile('cached', READ_FILE_BYTES);
    tree.addFile('direct', READ_FILE_BYTES);
    tree.addFile('refused', READ_FILE_BYTES);
    instance = new BigWritesFuse(mountpoint, tree.ops(), { force: false, mkdir: false });
    await mountFuse(instance);
  });

  afterAll(async () => {
    if (instance !== undefined && (await isMounted(mountpoint))) {
      await unmountFuse(instance).catch(() => undefined);
    }
    // fuse-native unmounts lazily, so check again and fall back to fusermount -uz.
    if (mountpoint !== undefined) await unmountIfMounted(mountpoint);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('mounts with big_writes', async () => {
    expect(await isMounted(mountpoint)).toBe(true);
    expect(instance!._fuseOptions()).toMatch(/(^-o|,)big_writes$/);
  });

  it('utimens receives the mtime from touch -m', async () => {
    const file = path.join(mountpoint, 'times');
    const mtimeMs = Date.UTC(2001, 1, 3, 4, 5, 6, 789);
    const before = tree.utimensCalls.length;

    const result = await run('touch', ['-m', '-d', '2001-02-03 04:05:06.789 UTC', file]);
    expect(result.code, result.stderr).toBe(0);

    const calls = tree.utimensCalls.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.path).toBe('/times');
    expect(calls[0]!.mtime).toBe(mtimeMs);
    expect((await statTimesMs(file)).mtimeMs).toBe(mtimeMs);
  });

  it('utimens receives the atime from touch -a', async () => {
    const file = path.join(mountpoint, 'times');
    const atimeMs = Date.UTC(2010, 5, 7, 8, 9, 10, 123);
    const before = tree.utimensCalls.length;

    const result = await run('touch', ['-a', '-d', '2010-06-07 08:09:10.123 UTC', file]);
    expect(result.code, result.stderr).toBe(0);

    const calls = tree.utimensCalls.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.path).toBe('/times');
    expect(calls[0]!.atime).toBe(atimeMs);
    expect((await statTimesMs(file)).atimeMs).toBe(atimeMs);
  });

  it('utimens receives distinct atime and mtime', async () => {
    const file = path.join(mountpoint, 'times');
    const reference = path.join(workDir, 'reference');
    const atimeMs = Date.UTC(2015, 0, 2, 3, 4, 5, 600);
    const mtimeMs = Date.UTC(2005, 10, 12, 13, 14, 15, 160);
    const referenceSetup = await run('bash', [
      '-c',
      'touch "$1" && touch -a -d "$2" "$1" && touch -m -d "$3" "$1"',
      'touch-reference',
      reference,
      '2015-01-02 03:04:05.600 UTC',
      '2005-11-12 13:14:15.160 UTC',
    ]);
    expect(referenceSetup.code, referenceSetup.stderr).toBe(0);
    const before = tree.utimensCalls.length;

    // touch -r copies both times of the reference file in one utimensat call.
    const result = await run('touch', ['-r', reference, file]);
    expect(result.code, result.stderr).toBe(0);

    const calls = tree.utimensCalls.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.atime).toBe(atimeMs);
    expect(calls[0]!.mtime).toBe(mtimeMs);
  });

  it('utimens receives the current time from touch', async () => {
    const file = path.join(mountpoint, 'times');
    const before = tree.utimensCalls.length;
    // touch without a date sends UTIME_NOW, which the binding replaces with the clock time.
    const startMs = Date.now();

    const result = await run('touch', [file]);
    expect(result.code, result.stderr).toBe(0);
    const endMs = Date.now();

    const calls = tree.utimensCalls.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.atime).toBe(calls[0]!.mtime);
    expect(calls[0]!.mtime).toBeGreaterThanOrEqual(startMs);
    expect(calls[0]!.mtime).toBeLessThanOrEqual(endMs);
  });

  it('dd bs=1M arrives in 128 KiB writes', async () => {
    const file = path.join(mountpoint, 'big');
    const before = tree.writeCalls.length;

    const result = await run('dd', [
      'if=/dev/zero',
      `of=${file}`,
      `bs=${DD_BLOCK_BYTES}`,
      `count=${DD_BLOCK_COUNT}`,
      'status=none',
    ]);
    expect(result.code, result.stderr).toBe(0);

    const writes = tree.writeCalls.slice(before);
    const totalBytes = DD_BLOCK_BYTES * DD_BLOCK_COUNT;
    expect(writes.map((call) => call.length)).toEqual(
      new Array<number>(totalBytes / BIG_WRITE_BYTES).fill(BIG_WRITE_BYTES),
    );
    expect(writes.map((call) => call.position)).toEqual(
      writes.map((_call, index) => index * BIG_WRITE_BYTES),
    );
    expect(tree.files.get('/big')!.size).toBe(totalBytes);
  });

  it('open flag 1 sets direct_io', async () => {
    // Two reads of the first page on one descriptor, then a shared mapping, which the kernel
    // refuses with ENODEV on a direct_io handle (libfuse 2.9 cannot allow it).
    const script = `
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 4096, 0)
os.pread(fd, 4096, 0)
try:
    mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ).close()
    print("mapped")
except OSError as e:
    print("errno", e.errno)
os.close(fd)
`;
    const reads = (name: string) => tree.readCalls.filter((call) => call.path === `/${name}`);

    const cached = await run('/usr/bin/python3', ['-c', script, path.join(mountpoint, 'cached')]);
    expect(cached.code, cached.stderr).toBe(0);
    expect(cached.stdout.trim()).toBe('mapped');
    // The second read comes from the page cache, so no offset is requested twice.
    const cachedPositions = reads('cached').map((call) => call.position);
    expect(cachedPositions.length).toBeGreaterThan(0);
    expect(new Set(cachedPositions).size).toBe(cachedPositions.length);

    const direct = await run('/usr/bin/python3', ['-c', script, path.join(mountpoint, 'direct')]);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stdout.trim()).toBe(`errno ${os.constants.errno.ENODEV}`);
    expect(reads('direct')).toEqual([
      { path: '/direct', length: 4096, position: 0 },
      { path: '/direct', length: 4096, position: 0 },
    ]);
  });

  it('open error without handle replies', async () => {
    const result = await run('cat', [path.join(mountpoint, 'refused')], { timeoutMs: 10_000 });
    expect(result.timedOut).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Permission denied');
  });

  it('handlers raised no errors', () => {
    expect(tree.handlerErrors).toEqual([]);
  });
});
