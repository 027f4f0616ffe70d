/**
 * The most recent bytes a stream delivered, kept so that a read arriving late (the kernel
 * reorders read-ahead) is served without a new request. The window keeps up to its limit while
 * the memory budget allows, and shrinks to its minimum when the budget is over. It is
 * contiguous: appending bytes that do not follow on clears it first.
 */
import type { MemoryBudget } from './memory-budget.js';

export class ByteWindow {
  readonly #limit: number;
  readonly #minimum: number;
  readonly #budget: MemoryBudget | undefined;
  #chunks: Buffer[] = [];
  #start = 0;
  #length = 0;

  constructor(limitBytes: number, budget?: MemoryBudget, minimumBytes = limitBytes) {
    this.#limit = limitBytes;
    this.#budget = budget;
    this.#minimum = Math.min(minimumBytes, limitBytes);
  }

  get end(): number {
    return this.#start + this.#length;
  }

  holds(offset: number): boolean {
    return offset >= this.#start && offset < this.end;
  }

  /** Appends `chunk`, which starts at file offset `offset`, dropping the oldest bytes. */
  append(offset: number, chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#length === 0 || offset !== this.end) this.clear(offset);
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    this.#budget?.charge(chunk.length);
    const limit = this.#budget?.overLimit ? this.#minimum : this.#limit;
    while (this.#length - (this.#chunks[0]?.length ?? 0) >= limit) {
      const dropped = this.#chunks.shift() as Buffer;
      this.#start += dropped.length;
      this.#length -= dropped.length;
      this.#budget?.release(dropped.length);
    }
  }

  /**
   * Copies the bytes at `offset` that the window holds into `out` at `outOffset`. Returns the
   * number copied, 0 when the window does not hold `offset`.
   */
  copyOut(offset: number, out: Buffer, outOffset: number): number {
    if (!this.holds(offset)) return 0;
    let copied = 0;
    let chunkStart = this.#start;
    for (const chunk of this.#chunks) {
      const chunkEnd = chunkStart + chunk.length;
      const at = offset + copied;
      if (at >= chunkStart && at < chunkEnd) {
        copied += chunk.copy(out, outOffset + copied, at - chunkStart);
        if (outOffset + copied >= out.length) break;
      }
      chunkStart = chunkEnd;
    }
    return copied;
  }

  /** Drops every byte and releases them from the budget. */
  clear(start = 0): void {
    this.#budget?.release(this.#length);
    this.#chunks = [];
    this.#start = start;
    this.#length = 0;
  }
}
