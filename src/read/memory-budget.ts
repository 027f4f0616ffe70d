/**
 * One byte budget for everything the read path keeps in memory: the bytes kept behind each
 * open stream and the block cache. Holders charge what they keep and release what they drop;
 * when the total passes the limit, holders shrink to their minimum instead of the process
 * growing. The budget never refuses a charge, because the bytes are already in memory when
 * they arrive: it reports pressure, and holders act on it.
 */
export class MemoryBudget {
  readonly limitBytes: number;
  #usedBytes = 0;
  peakBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get overLimit(): boolean {
    return this.#usedBytes > this.limitBytes;
  }

  charge(bytes: number): void {
    this.#usedBytes += bytes;
    if (this.#usedBytes > this.peakBytes) this.peakBytes = this.#usedBytes;
  }

  release(bytes: number): void {
    this.#usedBytes = Math.max(0, this.#usedBytes - bytes);
  }
}
