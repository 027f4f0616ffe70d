/**
 * One streaming download body, read at the caller's pace. `position` is the file offset of the
 * next byte the stream yields. Every byte taken or skipped is passed to a sink, which keeps it
 * for late reads and feeds the content hash check.
 *
 * Chunks arrive through 'data' events into a queue of at most QUEUE_BYTES, and reads take from
 * the queue without waiting while it has bytes. An async iterator would cost a promise round
 * per chunk; on a fast link that overhead, not the network, limited throughput.
 */
import type { Readable } from 'node:stream';
import type { MemoryBudget } from './memory-budget.js';

/** Receives the bytes of a stream in order, with the file offset of the first. */
export type ByteSink = (offset: number, bytes: Buffer) => void;

// Bytes received ahead of the reader before the body is paused, after which TCP flow control
// stops the server. Enough for several kernel read requests, small enough for many open files. The
// queue also pauses while the shared memory budget is over its limit.
const QUEUE_BYTES = 512 * 1024;

export class RangeStream {
  readonly #body: Readable;
  readonly #budget: MemoryBudget | undefined;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  position: number;
  /** Offset just past the last byte this stream will deliver. */
  readonly end: number;

  constructor(body: Readable, start: number, end: number, budget?: MemoryBudget) {
    this.#body = body;
    this.#budget = budget;
    this.position = start;
    this.end = end;
    body.on('data', (chunk: Buffer) => {
      this.#queue.push(chunk);
      this.#queuedBytes += chunk.length;
      budget?.charge(chunk.length);
      if (this.#queuedBytes >= QUEUE_BYTES || budget?.overLimit) body.pause();
      this.#notify();
    });
    body.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    body.on('error', (err: Error) => {
      this.#error = err;
      this.#notify();
    });
  }

  /** Discards bytes up to `offset`, passing them to `sink`. */
  async skipTo(offset: number, sink: ByteSink): Promise<void> {
    while (this.position < offset) {
      const chunk = await this.#next();
      this.#consume(chunk, Math.min(chunk.length, offset - this.position), sink);
    }
  }

  /**
   * Copies up to `length` bytes into `out` at `outOffset`, waiting only while no byte is queued.
   * Returns the number copied.
   * @throws Error when the body ends before `end` (a cut connection) or fails.
   */
  async take(out: Buffer, outOffset: number, length: number, sink: ByteSink): Promise<number> {
    let copied = 0;
    while (copied < length && this.position < this.end) {
      const chunk = this.#queue[0] ?? (await this.#next());
      const n = Math.min(chunk.length, length - copied);
      chunk.copy(out, outOffset + copied, 0, n);
      this.#consume(chunk, n, sink);
      copied += n;
    }
    return copied;
  }

  /** Ends the body and releases the queued bytes from the budget. */
  destroy(): void {
    this.#body.destroy();
    this.#budget?.release(this.#queuedBytes);
    this.#queuedBytes = 0;
    this.#queue.length = 0;
  }

  async #next(): Promise<Buffer> {
    for (;;) {
      const chunk = this.#queue[0];
      if (chunk) return chunk;
      if (this.#error) throw this.#error;
      if (this.#ended) {
        throw new Error(`download body ended at offset ${this.position}, expected ${this.end}`);
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  // Passes the first `n` bytes of the queue's head chunk to the sink and drops them.
  #consume(chunk: Buffer, n: number, sink: ByteSink): void {
    sink(this.position, chunk.subarray(0, n));
    this.position += n;
    this.#queuedBytes -= n;
    this.#budget?.release(n);
    if (n < chunk.length) this.#queue[0] = chunk.subarray(n);
    else this.#queue.shift();
    // A stream with an empty queue resumes even over budget, or its reader would wait forever.
    const room = this.#queuedBytes < QUEUE_BYTES / 2 && !this.#budget?.overLimit;
    if ((room || this.#queuedBytes === 0) && this.#body.isPaused()) this.#body.resume();
  }
}
