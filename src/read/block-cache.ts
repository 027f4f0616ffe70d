/**
 * Blocks fetched by random reads, kept for re-reads by any handle. A key names the file id, its
 * rev and the block offset, so a new revision never hits an old block. The cache charges its
 * bytes to the memory budget and gives way when the budget is over its limit.
 */
import { LRUCache } from 'lru-cache';
import type { MemoryBudget } from './memory-budget.js';

export class BlockCache {
  readonly #budget: MemoryBudget;
  readonly #blocks: LRUCache<string, Buffer>;
  hits = 0;
  misses = 0;

  /** @param maxBytes upper bound for the cache alone; the shared budget can lower it. */
  constructor(budget: MemoryBudget, maxBytes: number) {
    this.#budget = budget;
    this.#blocks = new LRUCache<string, Buffer>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (block) => Math.max(1, block.length),
      dispose: (block) => budget.release(block.length),
    });
  }

  static key(id: string, rev: string, offset: number): string {
    return `${id}@${rev}@${offset}`;
  }

  // A miss is counted when the fetched block is stored, not on every look: readers check the
  // cache before each new stream, and those looks would count a sequential read as misses.
  get(key: string): Buffer | undefined {
    const block = this.#blocks.get(key);
    if (block) this.hits++;
    return block;
  }

  /** Stores a block fetched after a miss. */
  set(key: string, block: Buffer): void {
    this.misses++;
    this.#budget.charge(block.length);
    this.#blocks.set(key, block);
    while (this.#budget.overLimit && this.#blocks.size > 0) this.#blocks.pop();
  }

  get sizeBytes(): number {
    return this.#blocks.calculatedSize;
  }
}
