/**
 * One streaming download body, read at the caller's pace. `position` is the file offset of the
 * next byte the stream yields. The stream writes what arrives into its handle's ByteWindow as
 * ahead bytes, and taking or skipping bytes moves them behind. Every byte taken or skipped is
 * passed to a sink, which feeds the content hash check.
 *
 * Chunks arrive through 'data' events, at most QUEUE_BYTES ahead of the reader, and reads take
 * from the window without waiting while it has bytes ahead. An async iterator would cost a
 * promise round per chunk; on a fast link that overhead, not the network, limited throughput.
 */
import type { Readable } from 'node:stream';
import type { ByteSink, ByteWindow } from './byte-window.js';
import type { MemoryBudget } from './memory-budget.js';

// Bytes received ahead of the reader before the body is paused, after which TCP flow control
// stops the server. The body also pauses while the shared memory budget is over its limit, which
// is what bounds many open files. Each pause and resume costs the server a stall and both sides
// wake-ups. A 1 GiB dd from the emulator (8 interleaved rounds per size on one machine) ran at a
// median of 435 MiB/s with 512 KiB, 532 with 4 MiB and 593 with 16 MiB. The daemon spent 2.39,
// 2.02 and 1.95 core-seconds per GiB.
const QUEUE_BYTES = 16 * 1024 * 1024;

export class RangeStream {
  readonly #body: Readable;
  readonly #window: ByteWindow;
  readonly #budget: MemoryBudget | undefined;
  #received: number;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #destroyed = false;
  position: number;
  /** Offset just past the last byte this stream will deliver. */
  readonly end: number;

  /** Writes the body's bytes into `window`, which the stream uses alone until destroyed. */
  constructor(body: Readable, start: number, end: number, window: ByteWindow, budget?: MemoryBudget) {
    this.#body = body;
    this.#window = window;
    this.#budget = budget;
    this.position = start;
    this.#received = start;
    this.end = end;
    body.on('data', (chunk: Buffer) => {
      // The window passes to the next stream once this one is destroyed.
      if (this.#destroyed) return;
      window.write(this.#received, chunk, end);
      budget?.countReceived(chunk.length);
      this.#received += chunk.length;
      if (window.aheadBytes >= QUEUE_BYTES || budget?.overLimit) body.pause();
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
      await this.#ready();
      this.#consume(offset - this.position, undefined, 0, sink);
    }
  }

  /**
   * Copies up to `length` bytes into `out` at `outOffset`, waiting only while no byte is ahead.
   * Returns the number copied.
   * @throws Error when the body ends before `end` (a cut connection) or fails.
   */
  async take(out: Buffer, outOffset: number, length: number, sink: ByteSink): Promise<number> {
    let copied = 0;
    while (copied < length && this.position < this.end) {
      if (this.#window.aheadBytes === 0) await this.#ready();
      copied += this.#consume(length - copied, out, outOffset + copied, sink);
    }
    return copied;
  }

  /** Ends the body and drops the bytes it wrote ahead of the reader. */
  destroy(): void {
    this.#destroyed = true;
    this.#body.destroy();
    this.#window.dropAhead();
  }

  // Waits until a byte is ahead of the reader.
  async #ready(): Promise<void> {
    for (;;) {
      if (this.#window.aheadBytes > 0) return;
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

  // Takes up to `length` ahead bytes from the window.
  #consume(length: number, out: Buffer | undefined, outOffset: number, sink: ByteSink): number {
    const taken = this.#window.take(length, out, outOffset, sink);
    this.position += taken;
    // A stream with nothing ahead resumes even over budget, or its reader would wait forever.
    const ahead = this.#window.aheadBytes;
    const room = ahead < QUEUE_BYTES / 2 && !this.#budget?.overLimit;
    if ((room || ahead === 0) && this.#body.isPaused()) this.#body.resume();
    return taken;
  }
}
