/**
 * The bytes of one handle around its stream position. Bytes that a stream received and the
 * reader has not taken yet are "ahead". Bytes already taken are kept "behind", so that a read
 * arriving late (the kernel reorders read-ahead) is served without a new request. The window
 * keeps up to its limit behind while the memory budget allows, and shrinks to its minimum when
 * the budget is over. It is contiguous: writing bytes that do not follow on clears it first.
 *
 * Bytes are copied into slabs pooled by the memory budget, and the budget is charged for whole
 * slabs. So the charge matches the memory the window holds, and no network chunk outlives its
 * 'data' event: a kept slice of a chunk used to keep the whole socket read alive.
 */
import { SLAB_BYTES, type MemoryBudget } from './memory-budget.js';

/** Receives taken bytes in order, with the file offset of the first. It must not keep `bytes`. */
export type ByteSink = (offset: number, bytes: Buffer) => void;

export class ByteWindow {
  readonly #limit: number;
  readonly #minimum: number;
  readonly #budget: MemoryBudget | undefined;
  // Contiguous buffers: #slabs[0] starts at file offset #base, and each next one starts where
  // the previous ends. Only the last one may be partly written.
  #slabs: Buffer[] = [];
  // Total length of #slabs.
  #capacity = 0;
  #base = 0;
  #start = 0;
  #end = 0;
  #writeEnd = 0;

  constructor(limitBytes: number, budget?: MemoryBudget, minimumBytes = limitBytes) {
    this.#limit = limitBytes;
    this.#budget = budget;
    this.#minimum = Math.min(minimumBytes, limitBytes);
  }

  /** Offset just past the last byte taken, the first byte of the ahead bytes. */
  get end(): number {
    return this.#end;
  }

  /** Number of bytes written but not yet taken. */
  get aheadBytes(): number {
    return this.#writeEnd - this.#end;
  }

  /** Whether the byte at `offset` is kept behind. */
  holds(offset: number): boolean {
    return offset >= this.#start && offset < this.#end;
  }

  /** Appends `chunk`, which starts at file offset `offset`, as taken bytes. */
  append(offset: number, chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.write(offset, chunk);
    this.take(chunk.length);
  }

  /**
   * Copies `chunk`, which starts at file offset `offset`, into the window as ahead bytes. A
   * chunk that does not start where the written bytes end clears the window first.
   * @param streamEnd offset where the writing stream ends, so that its last slab is no larger
   *   than needed.
   */
  write(offset: number, chunk: Buffer, streamEnd = Infinity): void {
    if (chunk.length === 0) return;
    if (offset !== this.#writeEnd) this.clear(offset);
    let done = 0;
    while (done < chunk.length) {
      if (this.#writeEnd === this.#base + this.#capacity) {
        const slab = this.#allocate(Math.min(SLAB_BYTES, Math.max(streamEnd - this.#writeEnd, chunk.length - done)));
        this.#slabs.push(slab);
        this.#capacity += slab.length;
      }
      const slab = this.#slabs[this.#slabs.length - 1] as Buffer;
      const slabEnd = this.#base + this.#capacity;
      const copied = chunk.copy(slab, slab.length - (slabEnd - this.#writeEnd), done);
      done += copied;
      this.#writeEnd += copied;
    }
    // A handle whose reader is slow would otherwise keep its full limit behind over budget.
    if (this.#budget?.overLimit) this.#trim();
  }

  /**
   * Takes the next `length` ahead bytes (fewer when fewer are ahead): copies them into `out` at
   * `outOffset` when `out` is given, passes them to `sink`, and keeps them behind.
   */
  take(length: number, out?: Buffer, outOffset = 0, sink?: ByteSink): number {
    const stop = Math.min(this.#writeEnd, this.#end + length);
    const taken = stop - this.#end;
    this.#visit(this.#end, stop, (at, bytes) => {
      if (out) bytes.copy(out, outOffset + (at - this.#end));
      sink?.(at, bytes);
    });
    this.#end = stop;
    this.#trim();
    return taken;
  }

  /**
   * Copies the bytes at `offset` that the window keeps behind into `out` at `outOffset`. Returns
   * the number copied, 0 when the window does not keep `offset`.
   */
  copyOut(offset: number, out: Buffer, outOffset: number): number {
    if (!this.holds(offset)) return 0;
    const stop = Math.min(this.#end, offset + out.length - outOffset);
    this.#visit(offset, stop, (at, bytes) => bytes.copy(out, outOffset + (at - offset)));
    return Math.max(0, stop - offset);
  }

  /** Drops the ahead bytes, which a destroyed stream will never deliver in full. */
  dropAhead(): void {
    this.#writeEnd = this.#end;
    for (;;) {
      const last = this.#slabs[this.#slabs.length - 1];
      if (last === undefined || this.#base + this.#capacity - last.length < this.#end) break;
      this.#slabs.pop();
      this.#capacity -= last.length;
      this.#free(last);
    }
  }

  /** Drops every byte and releases them from the budget; the next write starts at `start`. */
  clear(start = 0): void {
    for (const slab of this.#slabs) this.#free(slab);
    this.#slabs = [];
    this.#capacity = 0;
    this.#base = start;
    this.#start = start;
    this.#end = start;
    this.#writeEnd = start;
  }

  // Calls `visit` with views of the bytes from `from` to `to`, one per slab.
  #visit(from: number, to: number, visit: (at: number, bytes: Buffer) => void): void {
    let slabStart = this.#base;
    for (const slab of this.#slabs) {
      const slabEnd = slabStart + slab.length;
      if (slabEnd > from && slabStart < to) {
        const at = Math.max(from, slabStart);
        visit(at, slab.subarray(at - slabStart, Math.min(to, slabEnd) - slabStart));
      }
      if (slabEnd >= to) break;
      slabStart = slabEnd;
    }
  }

  // Moves the start up to the limit behind the taken bytes and frees the slabs before it.
  #trim(): void {
    const limit = this.#budget?.overLimit ? this.#minimum : this.#limit;
    this.#start = Math.max(this.#start, this.#end - limit);
    for (;;) {
      const first = this.#slabs[0];
      if (first === undefined || this.#base + first.length > this.#start) break;
      this.#slabs.shift();
      this.#base += first.length;
      this.#capacity -= first.length;
      this.#free(first);
    }
  }

  // Returns a pooled slab, or for the short tail of a stream a buffer of its own of `size`.
  #allocate(size: number): Buffer {
    if (this.#budget !== undefined && size === SLAB_BYTES) return this.#budget.acquireSlab();
    this.#budget?.charge(size);
    return Buffer.allocUnsafeSlow(size);
  }

  #free(slab: Buffer): void {
    if (this.#budget !== undefined && slab.length === SLAB_BYTES) this.#budget.releaseSlab(slab);
    else this.#budget?.release(slab.length);
  }
}
