// The write path (DropboxFilesystem with DirtyFiles and Namespace) driven directly, without
// FUSE, against the emulator over loopback: what each pattern sends, the bytes that arrive, the
// conflict policy, and uploads resumed from the spool after a failure.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { fetchAccessToken, sendRequest } from '../../src/emulator/testing.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { parseConfig } from '../../src/config/config.js';
import { MetadataCache } from '../../src/cache/metadata-cache.js';
import { DropboxFilesystem } from '../../src/fs/filesystem.js';
import { Errno, FsError } from '../../src/fs/errno.js';
import { silentLogger } from '../../src/log/logger.js';
import type { ListFolderResult } from '../../src/dropbox/types.js';
import { SpoolStore, unlockFolder } from '../../src/write/spool-store.js';
import { MtimeOverlay } from '../../src/write/mtime-overlay.js';
import { DirtyFiles } from '../../src/write/dirty-files.js';
import { Namespace } from '../../src/write/namespace.js';
import { blockDigests, blockDigestsOffThread, contentHashOf, hashOfDigests } from '../../src/dropbox/content-hash.js';

const MIB = 1024 * 1024;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_TRUNC = 0o1000;

interface Mount {
  fs: DropboxFilesystem;
  files: DirtyFiles;
  client: DropboxClient;
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

describe('write path against the emulator', () => {
  let dataDir: string;
  let cacheDir: string;
  let emulator: Emulator;
  const mounts: Mount[] = [];

  async function mount(spoolLimitBytes = 1024 * MIB): Promise<Mount> {
    const log = silentLogger();
    const config = parseConfig(
      {
        appKey: emulator.appKey,
        appSecret: emulator.appSecret,
        refreshToken: emulator.refreshToken,
        apiUrl: emulator.url,
        contentUrl: emulator.url,
        notifyUrl: emulator.url,
      },
      'test',
    );
    const client = new DropboxClient({
      config,
      timeoutMs: 5000,
      log,
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    });
    const cache = new MetadataCache({ client, rootPath: '', ttlMs: 60_000, maxEntries: 10_000, dirMtimeMs: 0 });
    const store = await SpoolStore.open(cacheDir, spoolLimitBytes, log);
    const mtimes = await MtimeOverlay.load(cacheDir, log);
    const files = new DirtyFiles({ client, cache, store, mtimes, log });
    await files.recover();
    const namespace = new Namespace({ client, cache, files, log });
    const fs = new DropboxFilesystem({
      client,
      cache,
      log,
      fileMode: 0o644,
      dirMode: 0o755,
      uid: 0,
      gid: 0,
      memoryBudgetBytes: 32 * MIB,
      writes: { files, namespace },
    });
    const created = { fs, files, client };
    mounts.push(created);
    return created;
  }

  async function unmount(target: Mount): Promise<void> {
    await target.files.stop(0);
    await target.client.close();
    await unlockFolder(cacheDir);
    mounts.splice(mounts.indexOf(target), 1);
  }

  function routes(): string[] {
    return emulator.calls().map((call) => call.route);
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-write-path-'));
    emulator = await startEmulator({ dataDir });
  });

  beforeEach(async () => {
    cacheDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-write-cache-'));
    emulator.clearFaults();
    emulator.clearCalls();
  });

  afterEach(async () => {
    for (const open of [...mounts]) await unmount(open);
    await rm(cacheDir, { recursive: true, force: true });
  });

  afterAll(async () => {
    await emulator?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a small new file is one files/upload at close', async () => {
    const { fs } = await mount();
    const fh = await fs.create('/small.txt');
    expect(await fs.write(fh, Buffer.from('hello\n'), 0)).toBe(6);
    expect((await fs.getattr('/small.txt')).size).toBe(6);
    expect(routes().filter((route) => route.startsWith('files/upload'))).toEqual([]);
    await fs.flush(fh);
    await fs.release(fh);
    expect(await readFile(path.join(dataDir, 'small.txt'), 'utf8')).toBe('hello\n');
    expect(routes().filter((route) => route.startsWith('files/upload'))).toEqual(['files/upload']);
  });

  it('a large file written front to back streams chunks before close', async () => {
    const { fs } = await mount();
    const content = pattern(40 * MIB + 12345, 1);
    const fh = await fs.create('/stream.bin');
    for (let offset = 0; offset < content.length; offset += 128 * 1024) {
      await fs.write(fh, content.subarray(offset, offset + 128 * 1024), offset);
    }
    // The session starts once two chunks are spooled; give the background append time to run.
    for (let i = 0; i < 100 && !routes().includes('files/upload_session/start'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(routes()).toContain('files/upload_session/start');
    await fs.flush(fh);
    await fs.release(fh);
    expect((await readFile(path.join(dataDir, 'stream.bin'))).equals(content)).toBe(true);
    const uploads = routes().filter((route) => route.startsWith('files/upload'));
    expect(uploads[0]).toBe('files/upload_session/start');
    expect(uploads.at(-1)).toBe('files/upload_session/finish');
    expect(uploads).not.toContain('files/upload');
  });

  it('an edit in the middle of an existing file keeps the rest', async () => {
    const original = pattern(3 * MIB, 2);
    await writeFile(path.join(dataDir, 'edit.bin'), original);
    await emulator.rescan();
    const { fs } = await mount();
    const fh = await fs.open('/edit.bin', O_RDWR);
    await fs.write(fh, Buffer.from('PATCH'), MIB);
    const readBack = await fs.read(fh, MIB - 2, 9);
    expect(readBack).toEqual(Buffer.concat([original.subarray(MIB - 2, MIB), Buffer.from('PATCH'), original.subarray(MIB + 5, MIB + 7)]));
    await fs.flush(fh);
    await fs.release(fh);
    const expected = Buffer.from(original);
    expected.write('PATCH', MIB);
    expect((await readFile(path.join(dataDir, 'edit.bin'))).equals(expected)).toBe(true);
  });

  it('opening for writing and closing without a change sends nothing', async () => {
    await writeFile(path.join(dataDir, 'same.txt'), 'unchanged');
    await emulator.rescan();
    const { fs } = await mount();
    const fh = await fs.open('/same.txt', O_WRONLY);
    await fs.flush(fh);
    await fs.release(fh);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(routes().filter((route) => route.startsWith('files/upload'))).toEqual([]);
  });

  it('remote edit makes a conflicted copy', async () => {
    await writeFile(path.join(dataDir, 'shared.txt'), 'version 1\n');
    await emulator.rescan();
    const { fs } = await mount();
    const fh = await fs.open('/shared.txt', O_WRONLY);
    await fs.ftruncate(fh, 0);
    await fs.write(fh, Buffer.from('local edit\n'), 0);
    const response = await fetch(`${emulator.url}/_emulator/files/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/shared.txt', content_base64: Buffer.from('remote edit\n').toString('base64') }),
    });
    expect(response.ok).toBe(true);
    const error = await fs.flush(fh).then(
      () => undefined,
      (err: unknown) => err,
    );
    await fs.release(fh);
    expect(error).toBeInstanceOf(FsError);
    expect((error as FsError).errno).toBe(Errno.EEXIST);
    expect(await readFile(path.join(dataDir, 'shared.txt'), 'utf8')).toBe('remote edit\n');
    const copies = (await readdir(dataDir)).filter((name) => name.startsWith('shared (conflicted copy '));
    expect(copies).toHaveLength(1);
    expect(await readFile(path.join(dataDir, copies[0]!), 'utf8')).toBe('local edit\n');
  });

  it('failed commit resumes after restart', async () => {
    const first = await mount();
    emulator.addFault({ route: 'files/upload', fault: '503' });
    const fh = await first.fs.create('/pending.txt');
    await first.fs.write(fh, Buffer.from('kept across restarts\n'), 0);
    await expect(first.fs.flush(fh)).rejects.toThrow();
    await first.fs.release(fh);
    expect(first.fs.pendingUploads).toBe(1);
    const spooled = await readdir(path.join(cacheDir, 'spool'));
    expect(spooled.sort()).toEqual(['1.data', '1.json']);
    await unmount(first);
    await expect(readFile(path.join(dataDir, 'pending.txt'))).rejects.toThrow();

    emulator.clearFaults();
    const second = await mount();
    for (let i = 0; i < 100 && second.fs.pendingUploads > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await readFile(path.join(dataDir, 'pending.txt'), 'utf8')).toBe('kept across restarts\n');
    expect(await readdir(path.join(cacheDir, 'spool'))).toEqual([]);
  });

  it('mkdir, rename over a file, unlink and rmdir change Dropbox at once', async () => {
    const { fs } = await mount();
    await fs.mkdir('/dir');
    for (const [name, text] of [['a.txt', 'A'], ['b.txt', 'B']] as const) {
      const fh = await fs.create(`/dir/${name}`);
      await fs.write(fh, Buffer.from(text), 0);
      await fs.flush(fh);
      await fs.release(fh);
    }
    await fs.rename('/dir/a.txt', '/dir/b.txt');
    expect(await readFile(path.join(dataDir, 'dir', 'b.txt'), 'utf8')).toBe('A');
    expect((await readdir(path.join(dataDir, 'dir'))).sort()).toEqual(['b.txt']);
    await expect(fs.rmdir('/dir')).rejects.toMatchObject({ errno: Errno.ENOTEMPTY });
    await fs.unlink('/dir/b.txt');
    await fs.rmdir('/dir');
    await expect(readdir(path.join(dataDir, 'dir'))).rejects.toThrow();
    await expect(fs.getattr('/dir')).rejects.toMatchObject({ errno: Errno.ENOENT });
  });

  it('a failed write keeps the remote file as it was', async () => {
    await writeFile(path.join(dataDir, 'keep.txt'), 'the good version\n');
    await emulator.rescan();
    const { fs } = await mount(MIB);
    const fh = await fs.open('/keep.txt', O_WRONLY | O_TRUNC);
    await fs.write(fh, Buffer.alloc(512 * 1024, 1), 0);
    await expect(fs.write(fh, Buffer.alloc(MIB, 2), 512 * 1024)).rejects.toMatchObject({ errno: Errno.ENOSPC });
    await expect(fs.flush(fh)).rejects.toMatchObject({ errno: Errno.ENOSPC });
    await fs.release(fh);
    expect(await readFile(path.join(dataDir, 'keep.txt'), 'utf8')).toBe('the good version\n');
    expect(routes().filter((route) => route.startsWith('files/upload'))).toEqual([]);
    // The spool file is deleted in the background after the release.
    for (let i = 0; i < 50 && (await readdir(path.join(cacheDir, 'spool'))).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await readdir(path.join(cacheDir, 'spool'))).toEqual([]);
  });

  it('a write whose op timed out is not made', async () => {
    const { fs } = await mount();
    const fh = await fs.create('/late.bin');
    await fs.write(fh, pattern(20 * MIB, 4), 0);
    // The running commit makes the next write wait, and that write's deadline has passed.
    const committing = fs.fsync(fh);
    const expired = AbortSignal.abort();
    await expect(fs.write(fh, Buffer.from('late'), 0, expired)).rejects.toMatchObject({ errno: Errno.EIO });
    await committing;
    expect((await fs.getattr('/late.bin')).size).toBe(20 * MIB);
    const head = await fs.read(fh, 0, 4);
    expect(head.equals(pattern(20 * MIB, 4).subarray(0, 4))).toBe(true);
    await fs.release(fh);
  });

  it('a name Dropbox refuses fails at create', async () => {
    const { fs } = await mount();
    await expect(fs.create('/desktop.ini')).rejects.toMatchObject({ errno: Errno.EINVAL });
    await expect(fs.create(`/${'x'.repeat(256)}`)).rejects.toMatchObject({ errno: Errno.ENAMETOOLONG });
  });
});

describe('emulator move of a folder with decomposed names', () => {
  it('keeps each name whole', async () => {
    const decomposed = 'cafe\u0301.md';
    const folder = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-nfd-'));
    // The file exists before the emulator starts, as in a data folder it scans at start.
    await mkdir(path.join(folder, 'nfd-a'));
    await writeFile(path.join(folder, 'nfd-a', decomposed), 'accent');
    const emulator = await startEmulator({ dataDir: folder });
    try {
      const token = await fetchAccessToken(emulator);
      const call = async (route: string, arg: unknown) => {
        const reply = await sendRequest(`${emulator.url}/2/${route}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(arg),
        });
        expect(reply.status, reply.text).toBe(200);
        return reply.json() as ListFolderResult;
      };
      const { cursor } = await call('files/list_folder/get_latest_cursor', { path: '', recursive: true });
      // A listing first, as the mount makes one before a rename.
      await call('files/list_folder', { path: '/nfd-a' });
      await call('files/move_v2', { from_path: '/nfd-a', to_path: '/nfd-b' });
      const changes = await call('files/list_folder/continue', { cursor });
      const file = changes.entries.find((entry) => entry['.tag'] === 'file');
      expect(file?.name.normalize('NFC')).toBe(decomposed.normalize('NFC'));
      expect(file?.path_display?.normalize('NFC')).toBe(`/nfd-b/${decomposed}`.normalize('NFC'));
    } finally {
      await emulator.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('content hash from block digests', () => {
  it('chunks of whole 4 MiB blocks give the hash of the whole', async () => {
    const content = pattern(9 * MIB + 17, 3);
    const chunks = [content.subarray(0, 8 * MIB), content.subarray(8 * MIB)];
    expect(hashOfDigests(chunks.flatMap((chunk) => blockDigests(chunk)))).toBe(contentHashOf(content));
    expect(hashOfDigests(await blockDigestsOffThread(content))).toBe(contentHashOf(content));
    expect(hashOfDigests(blockDigests(Buffer.alloc(0)))).toBe(contentHashOf(Buffer.alloc(0)));
  });
});
