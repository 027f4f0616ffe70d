/**
 * Reads of one open file, served from range downloads of the revision seen at open.
 *
 * A sequential reader gets streaming responses whose ranges grow eightfold, from 1 MiB to 8, 64
 * and 512 MiB, then 1 GiB at most. A 100 MB file therefore costs four requests, plus one per cut
 * connection, resumed at the byte where the body stopped. Each request is one round trip, and
 * the response streams at the pace of the reader, so the window ahead of the reader is what the
 * server has sent and the socket buffers hold. The kernel sends read-ahead requests out of order
 * and several at a time. Reads are therefore served in arrival order with two allowances that
 * avoid a new request. A short forward gap is skipped on the open stream, and a short step back
 * is served from the bytes kept behind the stream position. A read elsewhere fetches the 128 KiB block that
 * holds it, through a block cache shared by all handles. A run of reads becomes sequential once
 * it covers 256 KiB.
 *
 * A read that reaches the end of a file read in order from byte 0 checks the bytes against the
 * file's content hash, and fails with EIO on a mismatch.
 *
 * Invariants: no request reaches past `size`; every request names the revision seen at open, so
 * one handle never mixes bytes of two revisions; reads of one reader never run concurrently; a
 * stream is destroyed as soon as it is left, so an abandoned body does not hold a connection.
 */
import type { DropboxClient } from '../dropbox/client.js';
import { RangeNotSatisfiableError } from '../dropbox/client.js';
import { ApiError } from '../dropbox/errors.js';
import { ContentHasher } from '../dropbox/content-hash.js';
import { DropboxMountError } from '../errors.js';
import { Errno, FsError } from '../fs/errno.js';
import type { Logger } from '../log/logger.js';
import { BlockCache } from './block-cache.js';
import { ByteWindow } from './byte-window.js';
import type { MemoryBudget } from './memory-budget.js';
import { RangeStream } from './range-stream.js';
import { acquireReplyBuffer } from './reply-buffers.js';

// The kernel reads in 128 KiB requests and keeps several in flight, so they arrive out of order
// by up to its read-ahead size (128 KiB by default, more where read_ahead_kb is raised).
// Skipping up to 2 MiB on an open stream is cheaper than a new round trip, and the bytes
// skipped stay behind the stream for the late arrivals, so the two limits are equal.
const MAX_FORWARD_SKIP_BYTES = 2 * 1024 * 1024;
const BEHIND_BYTES = MAX_FORWARD_SKIP_BYTES;
// Bytes a window keeps when the memory budget is over: one kernel read request.
const MIN_BEHIND_BYTES = 128 * 1024;
/** Size of the block a random read fetches: one kernel read request. */
export const BLOCK_BYTES = 128 * 1024;
// The first range of a sequential run; each next range is eight times the run so far. A reader
// that stops early (`file`, `head`) costs at most the first range.
const FIRST_WINDOW_BYTES = 1024 * 1024;
const WINDOW_GROWTH = 8;
const MAX_WINDOW_BYTES = 1024 * 1024 * 1024;
// A run of reads away from the start of the file counts as sequential once it is this long, so
// that the kernel's read-ahead after one random read does not open a large range.
const SEQUENTIAL_MIN_RUN_BYTES = 2 * BLOCK_BYTES;
// How far from byte 0 the first read of a handle may be and still open the stream at 0. The
// kernel sends a new reader's first read-ahead requests together, so the second can arrive first.
const FIRST_READ_OVERTAKE_BYTES = 4 * BLOCK_BYTES;
// Consecutive failures at one offset that are resumed; the next one fails the read with EIO.
const MAX_RESUMES = 3;
// A stream left unread this long is closed, so that a program holding files open without
// reading does not hold a server connection per file. The next read opens a new one.
const STREAM_IDLE_MS = 10_000;

/** The revision a handle reads, as seen at open. */
export interface FileVersion {
  id: string;
  rev: string;
  size: number;
  contentHash?: string;
}

export interface RangeReaderOptions {
  client: DropboxClient;
  /** Mount path, for log lines. */
  path: string;
  /** Download path: `rev:...` to pin the revision, or a path when the rev is unknown. */
  downloadPath: string;
  file: FileVersion;
  budget: MemoryBudget;
  blockCache: BlockCache;
  log: Logger;
}

export class RangeReader {
  readonly #options: RangeReaderOptions;
  readonly #window: ByteWindow;
  readonly #hasher = new ContentHasher();
  #hashedBytes = 0;
  #stream: RangeStream | undefined;
  #lastReadEnd = 0;
  // Whether a read has completed, so that #lastReadEnd is where the previous read ended.
  #hasRead = false;
  // Start of the current run of reads that each began near where the previous one ended.
  #runStart = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #failure: FsError | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  requests = 0;

  constructor(options: RangeReaderOptions) {
    this.#options = options;
    this.#window = new ByteWindow(BEHIND_BYTES, options.budget, MIN_BEHIND_BYTES);
  }

  /** Returns up to `length` bytes at `position`; fewer only at the end of the file. */
  read(position: number, length: number): Promise<Buffer> {
    clearTimeout(this.#idleTimer);
    const result = this.#queue.then(() => this.#read(position, length));
    this.#queue = result.catch(() => undefined);
    const queued = this.#queue;
    void queued.then(() => {
      if (this.#queue !== queued || !this.#stream) return;
      this.#idleTimer = setTimeout(() => this.#dropStream(), STREAM_IDLE_MS);
      this.#idleTimer.unref();
    });
    return result;
  }

  /** Destroys the open stream and releases the kept bytes. Reads after close fail. */
  close(): void {
    clearTimeout(this.#idleTimer);
    this.#closed = true;
    this.#dropStream();
    this.#window.clear();
  }

  async #read(position: number, length: number): Promise<Buffer> {
    if (this.#closed) throw new Error('read after close');
    if (this.#failure) throw this.#failure;
    if (!this.#hasRead || Math.abs(position - this.#lastReadEnd) > MAX_FORWARD_SKIP_BYTES) this.#runStart = position;
    const wanted = Math.max(0, Math.min(length, this.#options.file.size - position));
    const out = acquireReplyBuffer(wanted);
    let filled = 0;
    let failures = 0;
    while (filled < wanted) {
      const offset = position + filled;
      const copied = this.#window.copyOut(offset, out, filled);
      if (copied > 0) {
        this.#hash(offset, out.subarray(filled, filled + copied));
        filled += copied;
        continue;
      }
      try {
        const taken = await this.#fill(offset, out, filled);
        if (taken === 0) break;
        filled += taken;
        failures = 0;
      } catch (err) {
        this.#dropStream();
        if (err instanceof RangeNotSatisfiableError) break;
        // The client already retried its own request; only a body that broke mid-way is resumed.
        if (err instanceof DropboxMountError) throw this.#translate(err);
        failures++;
        if (failures > MAX_RESUMES) throw err;
        this.#options.log.debug({ path: this.#options.path, offset, err: String(err) }, 'resuming read');
      }
    }
    this.#lastReadEnd = position + filled;
    this.#hasRead = true;
    if (this.#failure) throw this.#failure;
    return filled === wanted ? out : out.subarray(0, filled);
  }

  // Copies bytes at `offset` into `out`: from the open stream when it can reach `offset`, from a
  // cached block, from a new stream for a sequential run, or else from a newly fetched block.
  // Returns the number of bytes copied, 0 at the end of the file.
  async #fill(offset: number, out: Buffer, outOffset: number): Promise<number> {
    const stream = this.#stream;
    const reachable =
      stream !== undefined &&
      offset >= stream.position &&
      offset - stream.position <= MAX_FORWARD_SKIP_BYTES &&
      offset < stream.end;
    if (reachable) return this.#takeFromStream(stream, offset, out, outOffset);
    const cached = this.#copyFromCachedBlock(offset, out, outOffset);
    if (cached > 0) return cached;
    // A late read that the behind window no longer covers gets a block of its own, so that the
    // stream serving the reads ahead of it is not thrown away.
    if (stream !== undefined && offset < stream.position && stream.position - offset <= 2 * MAX_FORWARD_SKIP_BYTES) {
      return this.#copyFromBlock(offset, out, outOffset);
    }
    const openAt = this.#openOffset(offset);
    const runBytes = openAt - this.#runStart;
    if (openAt !== 0 && runBytes < SEQUENTIAL_MIN_RUN_BYTES) return this.#copyFromBlock(offset, out, outOffset);
    const window = Math.min(MAX_WINDOW_BYTES, Math.max(FIRST_WINDOW_BYTES, WINDOW_GROWTH * runBytes));
    // The range may start up to MAX_FORWARD_SKIP_BYTES before `offset`, and must reach past it.
    const opened = await this.#open(openAt, Math.max(window, offset - openAt + BLOCK_BYTES));
    if (!opened) return 0;
    return this.#takeFromStream(opened, offset, out, outOffset);
  }

  async #takeFromStream(stream: RangeStream, offset: number, out: Buffer, outOffset: number) {
    const sink = (at: number, bytes: Buffer) => this.#hash(at, bytes);
    await stream.skipTo(offset, sink);
    return stream.take(out, outOffset, out.length - outOffset, sink);
  }

  // The kernel's first read-ahead requests can arrive before the read they follow. So a read
  // shortly after the previous end opens the stream at that end, and the bytes skipped to reach
  // it go to the behind window, where the late read finds them. Bytes already in the window are
  // not fetched again.
  #openOffset(offset: number): number {
    // A first read has no previous end. Near the start it is taken as read-ahead that overtook
    // the read at 0, and further away as a random read.
    if (!this.#hasRead) return offset <= FIRST_READ_OVERTAKE_BYTES ? 0 : offset;
    const base = this.#window.holds(this.#lastReadEnd) ? this.#window.end : this.#lastReadEnd;
    const gap = offset - base;
    return gap > 0 && gap <= MAX_FORWARD_SKIP_BYTES ? base : offset;
  }

  async #open(offset: number, windowBytes: number): Promise<RangeStream | undefined> {
    this.#dropStream();
    const { client, downloadPath, file } = this.#options;
    if (offset >= file.size) return undefined;
    this.requests++;
    const end = Math.min(file.size, offset + windowBytes) - 1;
    const download = await client.download(downloadPath, { start: offset, end });
    const stream = new RangeStream(
      download.body,
      download.offset,
      download.offset + download.length,
      this.#window,
      this.#options.budget,
    );
    this.#stream = stream;
    return stream;
  }

  #copyFromCachedBlock(offset: number, out: Buffer, outOffset: number): number {
    const { file, blockCache } = this.#options;
    const blockStart = offset - (offset % BLOCK_BYTES);
    const block = blockCache.get(BlockCache.key(file.id, file.rev, blockStart));
    if (!block) return 0;
    const copied = block.copy(out, outOffset, offset - blockStart);
    this.#hash(offset, out.subarray(outOffset, outOffset + copied));
    return copied;
  }

  async #copyFromBlock(offset: number, out: Buffer, outOffset: number): Promise<number> {
    const { client, downloadPath, file, blockCache } = this.#options;
    const blockStart = offset - (offset % BLOCK_BYTES);
    const end = Math.min(file.size, blockStart + BLOCK_BYTES) - 1;
    this.requests++;
    const download = await client.download(downloadPath, { start: blockStart, end });
    const block = await readAll(download.body, end - blockStart + 1, this.#options.budget);
    blockCache.set(BlockCache.key(file.id, file.rev, blockStart), block);
    const copied = block.copy(out, outOffset, offset - blockStart);
    this.#hash(offset, out.subarray(outOffset, outOffset + copied));
    return copied;
  }

  // Hashes bytes while they are read in order from byte 0, whichever way they were served: a
  // stream, the bytes kept behind it, or a block. Bytes already hashed are skipped, so a caller
  // may pass bytes that overlap them.
  #hash(offset: number, bytes: Buffer): void {
    if (this.#options.file.contentHash === undefined) return;
    const hashed = this.#hashedBytes - offset;
    if (hashed < 0 || hashed >= bytes.length) return;
    this.#hasher.update(hashed === 0 ? bytes : bytes.subarray(hashed));
    this.#hashedBytes += bytes.length - hashed;
    if (this.#hashedBytes === this.#options.file.size) this.#verify();
  }

  #verify(): void {
    const { file, path, log } = this.#options;
    const actual = this.#hasher.digest();
    if (actual === file.contentHash) return;
    log.error({ path, rev: file.rev, expected: file.contentHash, actual }, 'content hash mismatch');
    this.#failure = new FsError(Errno.EIO, `${path}: content hash mismatch at rev ${file.rev}`);
  }

  // A pinned revision that Dropbox no longer has means the file changed under the handle.
  #translate(err: DropboxMountError): DropboxMountError {
    const pinned = this.#options.downloadPath.startsWith('rev:');
    if (pinned && err instanceof ApiError && err.has('not_found')) {
      return new FsError(Errno.ESTALE, `${this.#options.path}: rev ${this.#options.file.rev} is gone`, {
        cause: err,
      });
    }
    return err;
  }

  #dropStream(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
  }
}

/**
 * Reads a whole download body. The chunks are dropped once concatenated, so they count towards
 * the budget's reserve for uncollected network chunks.
 * @throws Error when it ends short of `length`, so a cut body is never cached.
 */
async function readAll(body: AsyncIterable<Buffer>, length: number, budget: MemoryBudget): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    received += chunk.length;
    budget.countReceived(chunk.length);
  }
  if (received !== length) throw new Error(`block body ended after ${received} of ${length} bytes`);
  return Buffer.concat(chunks, length);
}
