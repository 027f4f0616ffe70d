/**
 * One byte budget for everything the read path keeps in memory: the bytes kept around each
 * open stream and the block cache. Holders charge what they keep and release what they drop;
 * when the total passes the limit, holders shrink to their minimum instead of the process
 * growing. The budget never refuses a charge, because the bytes are already in memory when
 * they arrive: it reports pressure, and holders act on it.
 *
 * Two kinds of memory count towards the limit without being charged:
 * - A reserve for network chunks that wait for the garbage collector. Streams copy each chunk
 *   into a slab and drop it, but V8 frees dead chunks only in a later collection. The reserve
 *   starts at 3/8 of the limit and grows to the most bytes received between two collections,
 *   up to half the limit. The start is an estimate from one measurement: with 64 readers
 *   (Node 20, 2 cores, scripts/bench.mjs), array buffers peaked 40 to 60 MiB above the charged
 *   bytes, of which 21 to 30 MiB were chunks received since the last collection.
 * - Free slabs. Byte windows shrink and grow again all the time near the limit. Without a pool,
 *   every slab one window dropped became garbage while another window allocated a new one.
 *   Free slabs are kept while they fit in the limit with the charged bytes and the reserve.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';

/** Size of a pooled slab: one socket read of Node's default size. */
export const SLAB_BYTES = 64 * 1024;
// Free slabs kept beyond the limit, so that windows trading slabs at the limit reuse them.
const POOL_SLACK_BYTES = 64 * SLAB_BYTES;
// Free slabs are dropped once no slab has been acquired for this long, so that an idle daemon
// does not keep the memory of its last burst of reads.
const POOL_IDLE_MS = 10_000;

// Old-generation growing factor after a full collection, as V8's `heap_growing_percent` (the
// factor is 1 + percent / 100). V8 counts array buffer bytes allocated since the last full
// collection against the old-generation limit, and every network chunk is a new array buffer.
// With the daemon's small heap (about 17 MiB live) and V8's own factor, a 1 GiB read reached the
// limit every 5 to 12 MiB, so it ran 27 to 216 full collections and fell to 173 to 235 MiB/s.
// The chunks die young, and scavenges free them. Measured on 1 GiB dd reads from the emulator
// (Node 20.20, 2 vCPUs): factor 2 still ran 36 to 58 full collections per GiB, factor 3 ran 2 or
// 3, and factor 5 none after the first. V8's own factor ranges from 1.1 to 4 (kMinGrowingFactor
// and kMaxGrowingFactor in src/heap/heap-controller.h), so a heap with real old-generation garbage
// grows only a little further before it is collected.
const HEAP_GROWING_PERCENT = 400;

// Number of minor and major collections seen so far, counted once the first budget exists.
let collections = 0;
let gcObserver: PerformanceObserver | undefined;

function observeCollections(): void {
  if (gcObserver) return;
  // V8 reads the flag at every full collection, so setting it at run time takes effect there.
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR || kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        collections++;
      }
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

export class MemoryBudget {
  readonly limitBytes: number;
  #usedBytes = 0;
  #receivedBytes = 0;
  #receivedSince = collections;
  #reserveBytes = 0;
  // Released slabs, kept for reuse and not charged.
  #freeSlabs: Buffer[] = [];
  #acquiredSinceCheck = false;
  #idleTimer: NodeJS.Timeout | undefined;
  peakBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
    this.#reserveBytes = (limitBytes * 3) / 8;
    observeCollections();
  }

  /** Bytes charged by holders. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Bytes of network chunks received since the last collection. */
  get uncollectedBytes(): number {
    if (this.#receivedSince !== collections) {
      this.#receivedSince = collections;
      this.#receivedBytes = 0;
    }
    return this.#receivedBytes;
  }

  /** Bytes the limit keeps for network chunks that wait for the garbage collector. */
  get reserveBytes(): number {
    return this.#reserveBytes;
  }

  get overLimit(): boolean {
    return this.#usedBytes + this.#reserveBytes > this.limitBytes;
  }

  charge(bytes: number): void {
    this.#usedBytes += bytes;
    if (this.#usedBytes > this.peakBytes) this.peakBytes = this.#usedBytes;
  }

  release(bytes: number): void {
    this.#usedBytes = Math.max(0, this.#usedBytes - bytes);
  }

  /** Counts a network chunk that was copied out and dropped, until the next collection. */
  countReceived(bytes: number): void {
    this.#receivedBytes = this.uncollectedBytes + bytes;
    const reserve = Math.min(this.#receivedBytes, this.limitBytes / 2);
    if (reserve > this.#reserveBytes) this.#reserveBytes = reserve;
  }

  /** Returns a slab of SLAB_BYTES, reused when one is free, and charges it. */
  acquireSlab(): Buffer {
    this.charge(SLAB_BYTES);
    this.#acquiredSinceCheck = true;
    return this.#freeSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
  }

  /** Releases a slab from acquireSlab; the caller must hold no view of it afterwards. */
  releaseSlab(slab: Buffer): void {
    this.release(SLAB_BYTES);
    const freeBytes = (this.#freeSlabs.length + 1) * SLAB_BYTES;
    const inUse = this.#usedBytes + this.#reserveBytes;
    if (inUse + freeBytes > this.limitBytes + POOL_SLACK_BYTES) return;
    this.#freeSlabs.push(slab);
    this.#scheduleIdleCheck();
  }

  #scheduleIdleCheck(): void {
    if (this.#idleTimer) return;
    this.#acquiredSinceCheck = false;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#acquiredSinceCheck) this.#scheduleIdleCheck();
      else this.#freeSlabs = [];
    }, POOL_IDLE_MS);
    this.#idleTimer.unref();
  }
}
