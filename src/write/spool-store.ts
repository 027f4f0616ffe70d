/**
 * The spool: one local file per file being written, in a cache folder, so that bytes written
 * through the mount survive a failed upload and a daemon restart. A spool file has a record
 * beside it (`N.json`) from its first change until its content is on Dropbox. A record without
 * its data, or data without a record, is left over from a crash and is cleaned up at start.
 *
 * Invariant: `usedBytes` is the sum of the sizes of the spool files open in this process, and a
 * change that would take it past `limitBytes` fails with ENOSPC before any byte is written.
 */
import { mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { Errno, FsError, describeError } from '../fs/errno.js';
import { DropboxMountError } from '../errors.js';

/** A spool file's record: enough to commit it after a restart. */
export interface SpoolRecord {
  /** Dropbox path the content is committed to. */
  dropboxPath: string;
  /** The rev the content replaces; absent for a file that is new on Dropbox. */
  baseRev?: string;
  /** The file's mtime, sent as `client_modified`. */
  mtimeMs: number;
  /**
   * `closed` once the writer closed or synced it, so the content is what the writer meant;
   * `open` while it is being written. Only closed content is committed after a restart.
   */
  state: 'open' | 'closed';
}

export interface RecoveredSpool {
  file: SpoolFile;
  record: SpoolRecord;
}

const SPOOL_FOLDER = 'spool';
const LOST_FOLDER = 'unfinished';

export class SpoolStore {
  readonly #folder: string;
  readonly #lostFolder: string;
  readonly #limitBytes: number;
  readonly #log: Logger;
  #next = 1;
  usedBytes = 0;

  private constructor(cacheFolder: string, limitBytes: number, log: Logger) {
    this.#folder = join(cacheFolder, SPOOL_FOLDER);
    this.#lostFolder = join(cacheFolder, LOST_FOLDER);
    this.#limitBytes = limitBytes;
    this.#log = log;
  }

  /**
   * Opens the spool under `cacheFolder`, creating it with mode 0700 because it contains file
   * contents, and takes the folder's lock.
   * @throws DropboxMountError CACHE_IN_USE when another running daemon has locked the folder.
   */
  static async open(cacheFolder: string, limitBytes: number, log: Logger): Promise<SpoolStore> {
    const store = new SpoolStore(cacheFolder, limitBytes, log);
    await mkdir(store.#folder, { recursive: true, mode: 0o700 });
    await lockFolder(cacheFolder);
    return store;
  }

  get folder(): string {
    return this.#folder;
  }

  get limitBytes(): number {
    return this.#limitBytes;
  }

  /** Creates an empty spool file. */
  async create(): Promise<SpoolFile> {
    const names = new Set(await readdir(this.#folder));
    while (names.has(`${this.#next}.data`) || names.has(`${this.#next}.json`)) this.#next++;
    const id = this.#next++;
    const handle = await open(join(this.#folder, `${id}.data`), 'w+', 0o600);
    return new SpoolFile(this, join(this.#folder, String(id)), handle, 0);
  }

  /**
   * Reserves `bytes` more of the spool's limit.
   * @throws FsError ENOSPC when the spool would grow past its limit.
   */
  reserve(bytes: number, path: string): void {
    if (bytes <= 0) return;
    if (this.usedBytes + bytes > this.#limitBytes) {
      throw new FsError(
        Errno.ENOSPC,
        `${path}: the write spool is full (${this.usedBytes} of ${this.#limitBytes} bytes); ` +
          'raise --cache-max-size or wait for pending uploads',
      );
    }
    this.usedBytes += bytes;
  }

  unreserve(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
  }

  /**
   * Returns the spool files a previous run left with closed content to commit. Open content
   * (the daemon stopped while a program was still writing) is never committed, because it may
   * be half written: it is moved to the `unfinished` folder beside the spool and logged.
   * Leftovers with no record hold nothing that was not on Dropbox already and are removed.
   */
  async recover(): Promise<RecoveredSpool[]> {
    const names = await readdir(this.#folder);
    const recovered: RecoveredSpool[] = [];
    for (const name of names) {
      const id = /^(\d+)\.json$/.exec(name)?.[1];
      if (id === undefined) continue;
      const base = join(this.#folder, id);
      const record = await readRecord(`${base}.json`, this.#log);
      if (record === undefined || !names.includes(`${id}.data`)) {
        await rm(`${base}.json`, { force: true });
        continue;
      }
      if (record.state !== 'closed') {
        await this.#setAside(base, record);
        continue;
      }
      const handle = await open(`${base}.data`, 'r+');
      const { size } = await handle.stat();
      this.usedBytes += size;
      recovered.push({ file: new SpoolFile(this, base, handle, size), record });
    }
    for (const name of names) {
      const id = /^(\d+)\.data$/.exec(name)?.[1];
      if (id !== undefined && !names.includes(`${id}.json`)) await rm(join(this.#folder, name), { force: true });
    }
    return recovered;
  }

  async #setAside(base: string, record: SpoolRecord): Promise<void> {
    const keptPath = await this.moveToUnfinished(base, record);
    this.#log.warn(
      { path: record.dropboxPath, kept: keptPath },
      'a file was still being written when the daemon stopped; its bytes were not uploaded and are kept',
    );
  }

  /** Moves a spool file and a record of it to the `unfinished` folder; returns the data's path. */
  async moveToUnfinished(base: string, record: SpoolRecord): Promise<string> {
    await mkdir(this.#lostFolder, { recursive: true, mode: 0o700 });
    const target = join(this.#lostFolder, `${Date.now()}-${base.slice(base.lastIndexOf('/') + 1)}`);
    await rename(`${base}.data`, `${target}.data`);
    await writeFile(`${target}.json`, JSON.stringify(record), { mode: 0o600 });
    await rm(`${base}.json`, { force: true });
    return `${target}.data`;
  }
}

// Two daemons on one spool would both commit its files, so the folder contains the pid of its
// daemon. A pid that no longer runs is a daemon that was killed, and its lock is taken over.
async function lockFolder(cacheFolder: string): Promise<void> {
  const lockFile = join(cacheFolder, 'daemon.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, String(process.pid), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new DropboxMountError(
        'CACHE_IN_USE',
        `cache folder ${cacheFolder} is in use by the daemon with pid ${pid}; give each mount its own --cache-dir`,
      );
    }
    await rm(lockFile, { force: true });
  }
  throw new DropboxMountError('CACHE_IN_USE', `cache folder ${cacheFolder} could not be locked; remove ${lockFile}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the folder's lock at shutdown. */
export async function unlockFolder(cacheFolder: string): Promise<void> {
  const lockFile = join(cacheFolder, 'daemon.pid');
  const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(lockFile, { force: true });
}

async function readRecord(file: string, log: Logger): Promise<SpoolRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<SpoolRecord>;
    if (typeof parsed.dropboxPath !== 'string' || typeof parsed.mtimeMs !== 'number') return undefined;
    return {
      dropboxPath: parsed.dropboxPath,
      baseRev: typeof parsed.baseRev === 'string' ? parsed.baseRev : undefined,
      mtimeMs: parsed.mtimeMs,
      state: parsed.state === 'closed' ? 'closed' : 'open',
    };
  } catch (err) {
    log.warn({ file, err: describeError(err) }, 'unreadable spool record skipped');
    return undefined;
  }
}

/** One spool file: positional reads and writes, its size, and its record. */
export class SpoolFile {
  readonly #store: SpoolStore;
  readonly #base: string;
  readonly #handle: FileHandle;
  #size: number;
  #removed = false;
  /** Record writes and removals, in the order they were requested. */
  #records: Promise<void> = Promise.resolve();

  constructor(store: SpoolStore, base: string, handle: FileHandle, size: number) {
    this.#store = store;
    this.#base = base;
    this.#handle = handle;
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  get dataPath(): string {
    return `${this.#base}.data`;
  }

  /** @throws FsError ENOSPC when the spool is full. */
  async write(data: Uint8Array, position: number, path: string): Promise<void> {
    const end = position + data.length;
    this.#store.reserve(end - this.#size, path);
    if (end > this.#size) this.#size = end;
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.#handle.write(data, written, data.length - written, position + written);
      written += bytesWritten;
    }
  }

  /**
   * Writes like `write`, but synchronously: a write of up to 128 KiB into the page cache takes
   * microseconds, less than a round trip through the thread pool.
   * @throws FsError ENOSPC when the spool is full.
   */
  writeSync(data: Uint8Array, position: number, path: string): void {
    const end = position + data.length;
    this.#store.reserve(end - this.#size, path);
    if (end > this.#size) this.#size = end;
    let written = 0;
    while (written < data.length) {
      written += writeSync(this.#handle.fd, data, written, data.length - written, position + written);
    }
  }

  /** Reads up to `length` bytes at `position` into a new buffer; fewer at the end. */
  async read(position: number, length: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(length, this.#size - position));
    const buffer = Buffer.allocUnsafe(want);
    let filled = 0;
    while (filled < want) {
      const { bytesRead } = await this.#handle.read(buffer, filled, want - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === want ? buffer : buffer.subarray(0, filled);
  }

  /** @throws FsError ENOSPC when growing it would overfill the spool. */
  async truncate(size: number, path: string): Promise<void> {
    if (size > this.#size) this.#store.reserve(size - this.#size, path);
    else this.#store.unreserve(this.#size - size);
    this.#size = size;
    await this.#handle.truncate(size);
  }

  /** Writes the record atomically (a new file renamed over the old), so a crash leaves one whole. */
  saveRecord(record: SpoolRecord): Promise<void> {
    return this.#inOrder(async () => {
      if (this.#removed) return;
      const temporary = `${this.#base}.json.tmp`;
      await writeFile(temporary, JSON.stringify(record), { mode: 0o600 });
      await rename(temporary, `${this.#base}.json`);
    });
  }

  /** Drops the record once the content is on Dropbox; the data stays for open handles. */
  clearRecord(): Promise<void> {
    return this.#inOrder(() => rm(`${this.#base}.json`, { force: true }));
  }

  #inOrder(work: () => Promise<void>): Promise<void> {
    const result = this.#records.then(work, work);
    this.#records = result.catch(() => undefined);
    return result;
  }

  /**
   * Closes the spool file and moves it, with `record`, to the `unfinished` folder, for content
   * that Dropbox will never take. Returns the path it is kept at.
   */
  async setAside(record: SpoolRecord): Promise<string> {
    this.#removed = true;
    this.#store.unreserve(this.#size);
    await this.#handle.close().catch(() => undefined);
    let keptPath = '';
    await this.#inOrder(async () => {
      keptPath = await this.#store.moveToUnfinished(this.#base, record);
    });
    return keptPath;
  }

  /** Closes and deletes the spool file and its record. */
  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    this.#store.unreserve(this.#size);
    await this.#handle.close().catch(() => undefined);
    await this.#inOrder(() => rm(`${this.#base}.json`, { force: true }));
    await rm(`${this.#base}.data`, { force: true });
  }
}
