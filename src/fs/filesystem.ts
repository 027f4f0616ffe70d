/**
 * Filesystem operations by mount path, with no FUSE or HTTP types: the FUSE adapter translates
 * calls into these, and tests can drive them directly. Every method throws FsError or a client
 * error; errno.ts maps both for the kernel.
 */
import { constants as fsConstants } from 'node:fs';
import type { Deadline } from './deadline.js';
import type { DropboxClient } from '../dropbox/client.js';
import type { MetadataCache, Node } from '../cache/metadata-cache.js';
import { keyOf, splitPath, toDropboxPath } from '../cache/paths.js';
import { ExportCache } from '../cache/export-cache.js';
import { RangeReader } from '../read/range-reader.js';
import { BlockCache } from '../read/block-cache.js';
import { MemoryBudget } from '../read/memory-budget.js';
import type { Logger } from '../log/logger.js';
import { Errno, FsError } from './errno.js';
import { HandleTable } from './handles.js';
import { PageCacheGuard } from './page-cache-guard.js';
import { SpaceUsageCache, type Statfs } from './statfs.js';
import type { DirtyFile } from '../write/dirty-file.js';
import type { DirtyFiles } from '../write/dirty-files.js';
import type { Namespace } from '../write/namespace.js';
import { checkName } from '../write/names.js';

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  blksize: number;
  blocks: number;
  mtime: number;
  atime: number;
  ctime: number;
}

export interface FilesystemOptions {
  client: DropboxClient;
  cache: MetadataCache;
  log: Logger;
  /** Permission bits of files and folders, such as 0o444 and 0o555. */
  fileMode: number;
  dirMode: number;
  uid: number;
  gid: number;
  /** Bytes the read path may keep in memory across all handles. */
  memoryBudgetBytes: number;
  /** Exports of files that cannot be downloaded; default: one on `client` with its default size. */
  exports?: ExportCache;
  /** The write path; absent on a read-only mount, where every change fails with EROFS. */
  writes?: { files: DirtyFiles; namespace: Namespace };
}

/** An open handle: the reader of the rev seen at open, and the file being written, if any. */
interface OpenFile {
  path: string;
  reader: FileReader | undefined;
  /** Set on every handle of a file being written, so that reads see the local bytes. */
  dirty: DirtyFile | undefined;
  writable: boolean;
  /** Whether this handle changed the file since its last commit, so its close commits. */
  wrote: boolean;
  /** The registration with PageCacheGuard of a read-only handle pinned to a rev. */
  pageCache?: { fileId: string; rev: string; directIo: boolean };
  /** The file as a read-only handle saw it at open, for getattr once the path is gone. */
  pinned?: Node;
}

/** A handle's reads: a range reader for a downloadable file, bytes in memory for an export. */
interface FileReader {
  read(position: number, length: number): Promise<Buffer>;
  close(): void;
}

/** Reads of an export, from the bytes exported when the file was opened. */
class ExportReader implements FileReader {
  #body: Buffer | undefined;

  constructor(body: Buffer) {
    this.#body = body;
  }

  async read(position: number, length: number): Promise<Buffer> {
    if (this.#body === undefined) throw new Error('read after close');
    return this.#body.subarray(position, position + length);
  }

  close(): void {
    this.#body = undefined;
  }
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;
// The value differs between architectures (0o40000 on x86-64, 0o200000 on arm64).
const O_DIRECT = fsConstants.O_DIRECT ?? 0;
// A truncate by path waits this long for its commit, because the kernel sends one just before
// an open with O_TRUNC, and the open's handle should carry the change to its close.
const TRUNCATE_COMMIT_DELAY_MS = 1_000;
// st_blocks counts 512-byte units whatever the block size; du(1) reads it.
const STAT_BLOCK_BYTES = 512;

export class DropboxFilesystem {
  readonly #options: FilesystemOptions;
  readonly #handles = new HandleTable<OpenFile>();
  readonly #pageCache = new PageCacheGuard();
  readonly #exports: ExportCache;
  readonly #space: SpaceUsageCache;
  readonly budget: MemoryBudget;
  readonly blockCache: BlockCache;

  constructor(options: FilesystemOptions) {
    this.#options = options;
    this.#space = new SpaceUsageCache(options.client, options.log);
    this.#exports = options.exports ?? new ExportCache(options.client);
    this.budget = new MemoryBudget(options.memoryBudgetBytes);
    // Half the budget at most for cached blocks, so open streams always keep room behind them.
    this.blockCache = new BlockCache(this.budget, options.memoryBudgetBytes / 2);
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  /** Files whose content is not on Dropbox yet. */
  get pendingUploads(): number {
    return this.#options.writes?.files.pendingCount ?? 0;
  }

  /** Bytes held in the write spool, and its limit. */
  get spoolUsage(): { usedBytes: number; limitBytes: number } {
    return this.#options.writes?.files.spoolUsage ?? { usedBytes: 0, limitBytes: 0 };
  }

  /** True when the mount takes changes; false makes every change EROFS. */
  get writable(): boolean {
    return this.#options.writes !== undefined;
  }

  async getattr(path: string): Promise<Stat> {
    const dirty = this.#options.writes?.files.get(path);
    if (dirty !== undefined) return this.#dirtyStat(dirty);
    try {
      return this.#toStat(await this.#withExportSize(await this.#options.cache.lookup(path)));
    } catch (err) {
      // The kernel requests the attributes of an open file by its path, before a read near the
      // end and for fstat. Once the file is deleted or moved on Dropbox, the handle still reads
      // the revision it opened, so those calls get that revision's attributes, not ENOENT.
      const pinned = err instanceof FsError && err.errno === Errno.ENOENT ? this.#pinnedAt(path) : undefined;
      if (pinned === undefined) throw err;
      return this.#toStat(pinned);
    }
  }

  /** Returns the names in a folder with their stats, which lets `find` skip a lookup each. */
  async readdir(path: string): Promise<{ names: string[]; stats: Stat[] }> {
    const node = await this.#options.cache.lookup(path);
    if (node.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${path} is not a folder`);
    const listing = await this.#options.cache.listing(path);
    const entries = new Map<string, { name: string; stat: Stat }>();
    // Exports are sized (exported once per rev) in parallel, so that `ls -l` waits for one.
    const children = await Promise.all([...listing.children.values()].map((child) => this.#withExportSize(child)));
    for (const child of children) entries.set(keyOf(child.name), { name: child.name, stat: this.#toStat(child) });
    // Files being written show with their local size, and new ones before their first commit.
    for (const dirty of this.#options.writes?.files.childrenOf(path) ?? []) {
      const { name } = splitPath(dirty.path);
      entries.set(keyOf(name), { name, stat: this.#dirtyStat(dirty) });
    }
    const names: string[] = [];
    const stats: Stat[] = [];
    for (const { name, stat } of entries.values()) {
      names.push(name);
      stats.push(stat);
    }
    return { names, stats };
  }

  /**
   * Opens a file and returns its handle number. Write access attaches the handle to the file's
   * spool, and O_TRUNC empties it.
   * @throws FsError EROFS for write access to a read-only mount, EISDIR for a folder, EACCES for
   *   write access to an export.
   */
  async open(path: string, flags: number, signal?: Deadline): Promise<number> {
    const writes = this.#options.writes;
    const wantsWrite = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    if (wantsWrite && writes === undefined) throw new FsError(Errno.EROFS, `${path}: the mount is read-only`);
    const existing = writes?.files.get(path);
    const node =
      existing !== undefined && existing.baseRev === undefined ? undefined : await this.#lookupForChange(path, existing, wantsWrite);
    if (node?.kind === 'dir') throw new FsError(Errno.EISDIR, `${path} is a folder`);
    if (!wantsWrite && existing === undefined) {
      const reader = await this.#readerOf(path, node!);
      const pageCache = this.#registerPageCache(path, node!, flags);
      const pinned = node!.exportFormat === undefined ? node : undefined;
      return this.#handles.add({ path, reader, dirty: undefined, writable: false, wrote: false, pageCache, pinned });
    }
    // NOTE: handles for writing, and every handle of a file being written, always use the page
    // cache. One opened while a read-only handle of another rev is open can read that rev's pages.
    if (node?.exportFormat !== undefined) throw new FsError(Errno.EACCES, `${path} is an export and cannot be written`);
    if (signal?.aborted) throw new FsError(Errno.EIO, `${path}: the open timed out`);
    const base = node === undefined || node.rev === undefined ? undefined : { rev: node.rev, size: node.size, mtimeMs: node.mtimeMs };
    const dirty = writes!.files.attach(path, base);
    // A file gone on Dropbox that an open handle still shows is created anew, as create() does.
    if (node === undefined && existing === undefined) dirty.markCreated();
    const handle: OpenFile = { path, reader: undefined, dirty, writable: wantsWrite, wrote: false };
    try {
      if (node !== undefined && !dirty.hasLocalContent) handle.reader = await this.#readerOf(path, node);
      if ((flags & O_TRUNC) !== 0) await dirty.truncate(0);
    } catch (err) {
      writes!.files.release(dirty);
      throw err;
    }
    return this.#handles.add(handle);
  }

  /**
   * Creates a new file and opens it for writing. It exists only here until its first commit.
   * @throws FsError EROFS, EEXIST, EINVAL or ENAMETOOLONG for a name Dropbox refuses.
   */
  async create(path: string, signal?: Deadline): Promise<number> {
    const writes = this.#requireWritable(path);
    checkName(path);
    const parent = await this.#options.cache.lookup(splitPath(path).parent);
    if (parent.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${splitPath(path).parent} is not a folder`);
    if (writes.files.get(path) !== undefined || (await this.#exists(path))) {
      throw new FsError(Errno.EEXIST, `${path} already exists`);
    }
    // The program got EIO for this create, so the file must not appear after all.
    if (signal?.aborted) throw new FsError(Errno.EIO, `${path}: the create timed out`);
    const dirty = writes.files.attach(path, undefined);
    dirty.markCreated();
    return this.#handles.add({ path, reader: undefined, dirty, writable: true, wrote: false });
  }

  /**
   * Tells whether the handle must bypass the kernel page cache (FUSE direct_io), because the
   * cache may contain pages of another revision of its file (see PageCacheGuard).
   */
  bypassesPageCache(fh: number): boolean {
    return this.#handles.get(fh)?.pageCache?.directIo ?? false;
  }

  /** Returns up to `length` bytes at `position`; fewer at the end of the file. */
  async read(fh: number, position: number, length: number): Promise<Buffer> {
    const handle = this.#handle(fh);
    if (handle.dirty !== undefined && (handle.dirty.hasLocalContent || handle.reader === undefined)) {
      return handle.dirty.read(position, length);
    }
    if (handle.reader === undefined) throw new FsError(Errno.EBADF, `${handle.path}: handle has nothing to read`);
    return handle.reader.read(position, length);
  }

  /**
   * Writes `data` at `position` into the file's spool and returns the byte count. A write
   * that waits is dropped when `signal` aborts first.
   * @throws FsError EBADF on a read-only handle, ENOSPC when the spool is full, EIO when the
   *   write was dropped.
   */
  async write(fh: number, data: Buffer, position: number, signal?: Deadline): Promise<number> {
    const handle = this.#handle(fh);
    if (!handle.writable || handle.dirty === undefined) {
      throw new FsError(Errno.EBADF, `${handle.path}: handle is not open for writing`);
    }
    // `data` is the kernel's buffer, valid until the reply. A write that has to wait (for a
    // commit or a download) copies it first, because the op deadline may reply before it ends.
    if (!handle.dirty.writeNow(data, position)) await handle.dirty.write(Buffer.from(data), position, signal);
    handle.wrote = true;
    return data.length;
  }

  /** Sets the size of an open file. */
  async ftruncate(fh: number, size: number, signal?: Deadline): Promise<void> {
    const handle = this.#handle(fh);
    if (!handle.writable || handle.dirty === undefined) {
      throw new FsError(Errno.EBADF, `${handle.path}: handle is not open for writing`);
    }
    await handle.dirty.truncate(size, signal);
    handle.wrote = true;
  }

  /**
   * Sets the size of a file by path. With no handle open, the commit waits a moment in the
   * background, because the kernel truncates this way just before an open with O_TRUNC, and
   * committing the empty file at once would replace the remote file with nothing.
   */
  async truncate(path: string, size: number, signal?: Deadline): Promise<void> {
    const writes = this.#requireWritable(path);
    const existing = writes.files.get(path);
    const node = existing !== undefined && existing.baseRev === undefined ? undefined : await this.#lookupForChange(path, existing, true);
    if (node?.kind === 'dir') throw new FsError(Errno.EISDIR, `${path} is a folder`);
    if (existing === undefined && node !== undefined && node.size === size) return;
    const base = node?.rev === undefined ? undefined : { rev: node.rev, size: node.size, mtimeMs: node.mtimeMs };
    const dirty = writes.files.attach(path, base);
    try {
      await dirty.truncate(size, signal);
    } finally {
      writes.files.release(dirty, TRUNCATE_COMMIT_DELAY_MS);
    }
  }

  /**
   * Commits what this handle wrote; close(2) returns the result, so upload errors reach the
   * program that wrote. Handles that only read commit nothing, and neither do handles that
   * have not written yet. A shell opens a file with O_TRUNC and closes a duplicate of the
   * descriptor before the program writes, and a commit at that close would put an empty file
   * where the old content was. Such a handle's changes (O_TRUNC, a new empty file) are
   * committed when its last descriptor closes (release).
   * @throws the errors of DirtyFiles.commit.
   */
  async flush(fh: number): Promise<void> {
    const handle = this.#handle(fh);
    if (!handle.wrote || handle.dirty === undefined) return;
    handle.wrote = false;
    await this.#options.writes!.files.commit(handle.dirty);
  }

  /** Commits the file if it has changes, whichever handle made them. */
  async fsync(fh: number): Promise<void> {
    const handle = this.#handle(fh);
    if (handle.dirty === undefined || !handle.dirty.dirty) return;
    handle.wrote = false;
    await this.#options.writes!.files.commit(handle.dirty);
  }

  async release(fh: number): Promise<void> {
    const handle = this.#handles.remove(fh);
    if (handle === undefined) return;
    handle.reader?.close();
    if (handle.pageCache !== undefined) {
      const { fileId, rev, directIo } = handle.pageCache;
      this.#pageCache.close(fileId, rev, directIo);
    }
    if (handle.dirty !== undefined) this.#options.writes?.files.release(handle.dirty);
  }

  /**
   * Sets a file's mtime. Content not yet committed takes it as `client_modified`; committed
   * content keeps it in the mtime overlay. Folders have no mtime on Dropbox and ignore it.
   */
  async utimens(path: string, mtimeMs: number): Promise<void> {
    const writes = this.#requireWritable(path);
    const dirty = writes.files.get(path);
    if (dirty?.dirty) {
      dirty.setMtime(mtimeMs);
      await dirty.saveRecord();
      return;
    }
    const node = await this.#options.cache.lookup(path);
    if (node.kind === 'dir') return;
    writes.files.mtimes.set(node.id, node.contentHash, mtimeMs);
    if (dirty !== undefined) dirty.mtimeMs = mtimeMs;
  }

  /** Permission bits and owners are fixed by the mount options; this only checks the path. */
  async chmod(path: string): Promise<void> {
    this.#requireWritable(path);
    if (this.#options.writes?.files.get(path) === undefined) await this.#options.cache.lookup(path);
  }

  async mkdir(path: string): Promise<void> {
    checkName(path);
    await this.#requireWritable(path).namespace.mkdir(path);
  }

  async rmdir(path: string): Promise<void> {
    await this.#requireWritable(path).namespace.rmdir(path);
  }

  async unlink(path: string, signal?: Deadline): Promise<void> {
    await this.#requireWritable(path).namespace.unlink(path, signal);
  }

  async rename(from: string, to: string, signal?: Deadline): Promise<void> {
    checkName(to);
    await this.#requireWritable(from).namespace.rename(from, to, { signal, sourceOpen: this.#isOpen(from) });
  }

  // Returns the file that a read-only handle open at `path` pinned, if there is one.
  #pinnedAt(path: string): Node | undefined {
    const key = keyOf(path);
    for (const handle of this.#handles.values()) if (handle.pinned && keyOf(handle.path) === key) return handle.pinned;
    return undefined;
  }

  // Tells whether any handle is open on the file at `path`.
  #isOpen(path: string): boolean {
    const key = keyOf(path);
    if ((this.#options.writes?.files.get(path)?.openCount ?? 0) > 0) return true;
    for (const handle of this.#handles.values()) if (keyOf(handle.path) === key) return true;
    return false;
  }

  async statfs(): Promise<Statfs> {
    return this.#space.statfs();
  }

  #handle(fh: number): OpenFile {
    const handle = this.#handles.get(fh);
    if (!handle) throw new FsError(Errno.EBADF, `unknown handle ${fh}`);
    return handle;
  }

  #requireWritable(path: string): NonNullable<FilesystemOptions['writes']> {
    const writes = this.#options.writes;
    if (writes === undefined) throw new FsError(Errno.EROFS, `${path}: the mount is read-only`);
    return writes;
  }

  // The node of a file being opened: the one written here when it has no rev on Dropbox yet.
  async #lookupFile(path: string, existing: DirtyFile | undefined): Promise<Node> {
    const node = await this.#options.cache.lookup(path);
    if (existing === undefined || node.kind === 'dir' || node.rev === existing.baseRev) return node;
    // The cache lags a commit made here, and the spool contains the content of that rev.
    return { ...node, rev: existing.baseRev, size: existing.size, mtimeMs: existing.mtimeMs };
  }

  // Looks up a file about to be opened or truncated. With `forWrite`, a path gone on Dropbox that
  // getattr still reports for an open handle (see #pinnedAt) returns undefined. The kernel took
  // the name as existing and sent an open or truncate where the program requested a create.
  async #lookupForChange(path: string, existing: DirtyFile | undefined, forWrite: boolean): Promise<Node | undefined> {
    try {
      return await this.#lookupFile(path, existing);
    } catch (err) {
      const ghost = forWrite && err instanceof FsError && err.errno === Errno.ENOENT && this.#pinnedAt(path) !== undefined;
      if (!ghost) throw err;
      checkName(path);
      return undefined;
    }
  }

  async #exists(path: string): Promise<boolean> {
    try {
      await this.#options.cache.lookup(path);
      return true;
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.ENOENT) return false;
      throw err;
    }
  }

  // An O_DIRECT open gets direct_io whatever the guard decides. It never reads the page cache
  // anyway, and with direct_io the kernel also stops cutting its reads at the file's current
  // size, which a remote shrink lowers below the size of the rev this handle reads.
  // NOTE: a handle stays registered under the path it was opened at. A rename through the mount
  // moves the kernel's node, so an open at the new name does not see that handle.
  #registerPageCache(path: string, node: Node, flags: number): NonNullable<OpenFile['pageCache']> {
    const fileId = keyOf(path);
    const rev = `${node.id} ${node.rev ?? ''}`;
    if ((flags & O_DIRECT) !== 0) return { fileId, rev, directIo: true };
    return { fileId, rev, directIo: this.#pageCache.open(fileId, rev) };
  }

  async #readerOf(path: string, node: Node): Promise<FileReader> {
    if (node.exportFormat !== undefined) return new ExportReader(await this.#exports.bytes(node));
    const { client, log, cache } = this.#options;
    return new RangeReader({
      client,
      path,
      // Downloads name the revision seen now, so the handle never mixes two revisions.
      downloadPath: node.rev ? `rev:${node.rev}` : toDropboxPath(cache.rootNode().pathDisplay, path),
      file: { id: node.id, rev: node.rev ?? '', size: node.size, contentHash: node.contentHash },
      budget: this.budget,
      blockCache: this.blockCache,
      log,
    });
  }

  #dirtyStat(dirty: DirtyFile): Stat {
    const { fileMode, uid, gid } = this.#options;
    return {
      mode: S_IFREG | fileMode,
      uid,
      gid,
      size: dirty.size,
      nlink: 1,
      blksize: 4096,
      blocks: Math.ceil(dirty.size / STAT_BLOCK_BYTES),
      mtime: dirty.mtimeMs,
      atime: dirty.mtimeMs,
      ctime: dirty.mtimeMs,
    };
  }

  // Returns the node with the size of its export when it is an exported file, else unchanged.
  async #withExportSize(node: Node): Promise<Node> {
    if (node.exportFormat === undefined) return node;
    return { ...node, size: await this.#exports.size(node) };
  }

  #toStat(node: Node): Stat {
    const { fileMode, dirMode, uid, gid } = this.#options;
    const isDir = node.kind === 'dir';
    const mtime = (isDir ? undefined : this.#options.writes?.files.mtimes.get(node.id, node.contentHash)) ?? node.mtimeMs;
    return {
      mode: isDir ? S_IFDIR | dirMode : S_IFREG | fileMode,
      uid,
      gid,
      size: node.size,
      nlink: isDir ? 2 : 1,
      blksize: 4096,
      blocks: Math.ceil(node.size / STAT_BLOCK_BYTES),
      mtime,
      atime: mtime,
      ctime: mtime,
    };
  }
}
