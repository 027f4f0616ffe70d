/**
 * One streaming download body, read at the caller's pace. `position` is the file offset of the
 * next byte the stream yields; every byte taken or skipped is passed to a sink, which keeps it
 * for late reads and feeds the content hash check.
 */
import type { Readable } from 'node:stream';

/** Receives the bytes of a stream in order, with the file offset of the first. */
export type ByteSink = (offset: number, bytes: Buffer) => void;

export class RangeStream {
  readonly #body: Readable;
  readonly #chunks: AsyncIterator<Buffer>;
  #pending: Buffer | undefined;
  position: number;
  /** Offset just past the last byte this stream will deliver. */
  readonly end: number;

  constructor(body: Readable, start: number, end: number) {
    this.#body = body;
    this.#chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.position = start;
    this.end = end;
  }

  /** Discards bytes up to `offset`, passing them to `sink`. */
  async skipTo(offset: number, sink: ByteSink): Promise<void> {
    while (this.position < offset) {
      const chunk = await this.#next();
      const n = Math.min(chunk.length, offset - this.position);
      this.#consume(chunk, n, sink);
    }
  }

  /**
   * Copies up to `length` bytes into `out` at `outOffset`, waiting for at least one. Returns the
   * number copied.
   * @throws Error when the body ends before `end` (a cut connection) or fails.
   */
  async take(out: Buffer, outOffset: number, length: number, sink: ByteSink): Promise<number> {
    let copied = 0;
    while (copied < length && this.position < this.end) {
      const chunk = await this.#next();
      const n = Math.min(chunk.length, length - copied);
      chunk.copy(out, outOffset + copied, 0, n);
      this.#consume(chunk, n, sink);
      copied += n;
    }
    return copied;
  }

  destroy(): void {
    this.#body.destroy();
  }

  async #next(): Promise<Buffer> {
    if (this.#pending) return this.#pending;
    const { value, done } = await this.#chunks.next();
    if (done) {
      throw new Error(`download body ended at offset ${this.position}, expected ${this.end}`);
    }
    this.#pending = value;
    return value;
  }

  #consume(chunk: Buffer, n: number, sink: ByteSink): void {
    sink(this.position, chunk.subarray(0, n));
    this.position += n;
    this.#pending = n < chunk.length ? chunk.subarray(n) : undefined;
  }
}
