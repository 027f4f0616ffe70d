/**
 * Reads of one open file, served from range downloads. A sequential reader gets one streaming
 * response that runs to the end of the file, so reading a file start to end costs one request
 * (plus one per cut connection). The kernel sends read-ahead requests out of order and several at
 * a time, so reads are served in arrival order with two allowances that avoid a new request: a
 * short forward gap is skipped on the open stream, and a short step back is served from the
 * bytes kept behind the stream position. Any other read opens a bounded range at its offset.
 *
 * Invariants: no request reaches past `size`; reads of one reader never run concurrently; a
 * stream is destroyed as soon as it is left, so an abandoned body does not hold a connection.
 */
import type { DropboxClient } from '../dropbox/client.js';
import { RangeNotSatisfiableError } from '../dropbox/client.js';
import type { Logger } from '../log/logger.js';
import { DropboxMountError } from '../errors.js';
import { ByteWindow } from './byte-window.js';
import { RangeStream } from './range-stream.js';

// The kernel reads in 128 KiB requests and keeps up to 12 in flight (max_background), so a
// reordering spans at most 1.5 MiB. Skipping that much on an open stream is cheaper than a new
// round trip; keeping as much behind serves the late arrivals.
const MAX_FORWARD_SKIP_BYTES = 2 * 1024 * 1024;
const BEHIND_BYTES = 2 * 1024 * 1024;
// A read that does not continue the previous one fetches this much, so that a random 4 KiB read
// costs one small request while a reader that then goes on sequentially gets its next request
// opened to the end of the file.
const RANDOM_WINDOW_BYTES = 128 * 1024;
// Consecutive failures at one offset before the read fails with EIO.
const MAX_RESUMES = 3;

export interface RangeReaderOptions {
  client: DropboxClient;
  /** Dropbox path, `id:` or `rev:` of the file. */
  path: string;
  size: number;
  log: Logger;
}

export class RangeReader {
  readonly #options: RangeReaderOptions;
  readonly #behind = new ByteWindow(BEHIND_BYTES);
  #stream: RangeStream | undefined;
  #lastReadEnd = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  requests = 0;

  constructor(options: RangeReaderOptions) {
    this.#options = options;
  }

  /** Returns up to `length` bytes at `position`; fewer only at the end of the file. */
  read(position: number, length: number): Promise<Buffer> {
    const result = this.#queue.then(() => this.#read(position, length));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Destroys the open stream. Reads after close fail. */
  close(): void {
    this.#closed = true;
    this.#dropStream();
  }

  async #read(position: number, length: number): Promise<Buffer> {
    if (this.#closed) throw new Error('read after close');
    const wanted = Math.max(0, Math.min(length, this.#options.size - position));
    const out = Buffer.allocUnsafe(wanted);
    let filled = 0;
    let failures = 0;
    while (filled < wanted) {
      const offset = position + filled;
      const copied = this.#behind.copyOut(offset, out, filled);
      if (copied > 0) {
        filled += copied;
        continue;
      }
      try {
        const taken = await this.#readFromStream(offset, out, filled, position);
        if (taken === 0) break;
        filled += taken;
        failures = 0;
      } catch (err) {
        this.#dropStream();
        if (err instanceof RangeNotSatisfiableError) break;
        // The client already retried its own request; only a body that broke mid-way is resumed.
        if (err instanceof DropboxMountError) throw err;
        failures++;
        if (failures >= MAX_RESUMES) throw err;
        this.#options.log.debug({ path: this.#options.path, offset, err: String(err) }, 'resuming read');
      }
    }
    this.#lastReadEnd = position + filled;
    return filled === wanted ? out : out.subarray(0, filled);
  }

  // Copies bytes at `offset` into `out` from the open stream, opening one first when the stream
  // cannot reach `offset` cheaply. Returns the number of bytes copied, 0 at the end of the file.
  async #readFromStream(offset: number, out: Buffer, outOffset: number, readStart: number) {
    let stream = this.#stream;
    const reachable =
      stream !== undefined &&
      offset >= stream.position &&
      offset - stream.position <= MAX_FORWARD_SKIP_BYTES &&
      offset < stream.end;
    if (!reachable) {
      stream = await this.#open(this.#openOffset(offset), readStart);
      if (!stream) return 0;
    }
    const live = stream as RangeStream;
    await live.skipTo(offset, this.#behind);
    return live.take(out, outOffset, out.length - outOffset, this.#behind);
  }

  // The kernel's first read-ahead requests can arrive before the read they follow, so a read
  // shortly after the previous end opens the stream at that end: the bytes skipped to reach it
  // go to the behind window, where the late read finds them.
  // Bytes the behind window already holds are not fetched again.
  #openOffset(offset: number): number {
    const base = this.#behind.holds(this.#lastReadEnd) ? this.#behind.end : this.#lastReadEnd;
    const gap = offset - base;
    return gap > 0 && gap <= MAX_FORWARD_SKIP_BYTES ? base : offset;
  }

  async #open(offset: number, readStart: number): Promise<RangeStream | undefined> {
    this.#dropStream();
    const { client, path, size } = this.#options;
    if (offset >= size) return undefined;
    const sequential = offset === this.#lastReadEnd || readStart === this.#lastReadEnd;
    const end = sequential ? size : Math.min(size, offset + RANDOM_WINDOW_BYTES);
    this.requests++;
    const download = await client.download(path, { start: offset, end: end - 1 });
    const stream = new RangeStream(download.body, download.offset, download.offset + download.length);
    this.#stream = stream;
    return stream;
  }

  #dropStream(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
  }
}
