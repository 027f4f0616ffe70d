/**
 * Filesystem operations by mount path, with no FUSE or HTTP types: the FUSE adapter translates
 * calls into these, and tests can drive them directly. Every method throws FsError or a client
 * error; errno.ts maps both for the kernel.
 */
import type { DropboxClient } from '../dropbox/client.js';
import type { MetadataCache, Node } from '../cache/metadata-cache.js';
import { toDropboxPath } from '../cache/paths.js';
import { ExportCache } from '../cache/export-cache.js';
import { RangeReader } from '../read/range-reader.js';
import { BlockCache } from '../read/block-cache.js';
import { MemoryBudget } from '../read/memory-budget.js';
import type { Logger } from '../log/logger.js';
import { Errno, FsError } from './errno.js';
import { HandleTable } from './handles.js';
import { SpaceUsageCache, type Statfs } from './statfs.js';

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
// st_blocks counts 512-byte units whatever the block size; du(1) reads it.
const STAT_BLOCK_BYTES = 512;

export class DropboxFilesystem {
  readonly #options: FilesystemOptions;
  readonly #handles = new HandleTable<FileReader>();
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

  async getattr(path: string): Promise<Stat> {
    return this.#toStat(await this.#withExportSize(await this.#options.cache.lookup(path)));
  }

  /** Returns the names in a folder with their stats, which lets `find` skip a lookup each. */
  async readdir(path: string): Promise<{ names: string[]; stats: Stat[] }> {
    const node = await this.#options.cache.lookup(path);
    if (node.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${path} is not a folder`);
    const listing = await this.#options.cache.listing(path);
    const names: string[] = [];
    const stats: Stat[] = [];
    // Exports are sized (exported once per rev) in parallel, so that `ls -l` waits for one.
    const children = await Promise.all([...listing.children.values()].map((child) => this.#withExportSize(child)));
    for (const child of children) {
      names.push(child.name);
      stats.push(this.#toStat(child));
    }
    return { names, stats };
  }

  /**
   * Opens a file for reading and returns its handle number.
   * @throws FsError EROFS for any write access, EISDIR for a folder.
   */
  async open(path: string, flags: number): Promise<number> {
    if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0) {
      throw new FsError(Errno.EROFS, `${path}: the mount is read-only`);
    }
    const node = await this.#options.cache.lookup(path);
    if (node.kind === 'dir') throw new FsError(Errno.EISDIR, `${path} is a folder`);
    if (node.exportFormat !== undefined) return this.#handles.add(new ExportReader(await this.#exports.bytes(node)));
    const { client, log, cache } = this.#options;
    const reader = new RangeReader({
      client,
      path,
      // Downloads name the revision seen now, so the handle never mixes two revisions.
      downloadPath: node.rev ? `rev:${node.rev}` : toDropboxPath(cache.rootNode().pathDisplay, path),
      file: { id: node.id, rev: node.rev ?? '', size: node.size, contentHash: node.contentHash },
      budget: this.budget,
      blockCache: this.blockCache,
      log,
    });
    return this.#handles.add(reader);
  }

  /** Returns up to `length` bytes at `position`; fewer at the end of the file. */
  async read(fh: number, position: number, length: number): Promise<Buffer> {
    const reader = this.#handles.get(fh);
    if (!reader) throw new FsError(Errno.EBADF, `read on unknown handle ${fh}`);
    return reader.read(position, length);
  }

  async release(fh: number): Promise<void> {
    this.#handles.remove(fh)?.close();
  }

  async statfs(): Promise<Statfs> {
    return this.#space.statfs();
  }

  // Returns the node with the size of its export when it is an exported file, else unchanged.
  async #withExportSize(node: Node): Promise<Node> {
    if (node.exportFormat === undefined) return node;
    return { ...node, size: await this.#exports.size(node) };
  }

  #toStat(node: Node): Stat {
    const { fileMode, dirMode, uid, gid } = this.#options;
    const isDir = node.kind === 'dir';
    return {
      mode: isDir ? S_IFDIR | dirMode : S_IFREG | fileMode,
      uid,
      gid,
      size: node.size,
      nlink: isDir ? 2 : 1,
      blksize: 4096,
      blocks: Math.ceil(node.size / STAT_BLOCK_BYTES),
      mtime: node.mtimeMs,
      atime: node.mtimeMs,
      ctime: node.mtimeMs,
    };
  }
}
