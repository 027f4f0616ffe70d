/**
 * The most recent bytes a stream delivered, up to a byte limit, kept so that a read arriving
 * late (the kernel reorders read-ahead) is served without a new request. The window is
 * contiguous: appending bytes that do not follow on clears it first.
 */
export class ByteWindow {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #start = 0;
  #length = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
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
    while (this.#length - (this.#chunks[0]?.length ?? 0) >= this.#limit) {
      const dropped = this.#chunks.shift() as Buffer;
      this.#start += dropped.length;
      this.#length -= dropped.length;
    }
  }

  /**
   * Copies the bytes at `offset` that the window holds into `out` at `outOffset`. Returns the
   * number copied, 0 when the window does not hold `offset`.
   */
  copyOut(offset: number, out: Buffer, outOffset: number): number {
    if (offset < this.#start || offset >= this.end) return 0;
    let copied = 0;
    let chunkStart = this.#start;
    for (const chunk of this.#chunks) {
      const chunkEnd = chunkStart + chunk.length;
      const at = offset + copied;
      if (at >= chunkStart && at < chunkEnd) {
        const n = chunk.copy(out, outOffset + copied, at - chunkStart);
        copied += n;
        if (outOffset + copied >= out.length) break;
      }
      chunkStart = chunkEnd;
    }
    return copied;
  }

  clear(start = 0): void {
    this.#chunks = [];
    this.#start = start;
    this.#length = 0;
  }
}
