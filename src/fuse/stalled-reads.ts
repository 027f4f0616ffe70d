/**
 * Tracks the reads in flight on each file handle, so that a read on a handle whose earlier read
 * has outlived the op deadline fails at once. Linux retries a failed readahead with a second,
 * synchronous read of the same page, which would otherwise wait on the same stalled download
 * for a second full deadline.
 */
export class StalledReads {
  readonly #deadlineMs: number;
  // Start times (performance.now()) of the reads in flight, by handle.
  readonly #inFlight = new Map<number, Set<number>>();

  constructor(deadlineMs: number) {
    this.#deadlineMs = deadlineMs;
  }

  /** Tells whether a read on `fh` started at least one deadline ago and has not settled. */
  isStalled(fh: number): boolean {
    const started = this.#inFlight.get(fh);
    if (started === undefined) return false;
    const now = performance.now();
    for (const time of started) {
      if (now - time >= this.#deadlineMs) return true;
    }
    return false;
  }

  /** Runs `read` and keeps it listed under `fh` until it settles. */
  async track<T>(fh: number, read: () => Promise<T>): Promise<T> {
    // A distinct value per read, because two reads can start in the same microsecond.
    let startedAt = performance.now();
    let started = this.#inFlight.get(fh);
    if (started === undefined) {
      started = new Set();
      this.#inFlight.set(fh, started);
    }
    while (started.has(startedAt)) startedAt += 1e-6;
    started.add(startedAt);
    try {
      return await read();
    } finally {
      started.delete(startedAt);
      if (started.size === 0) this.#inFlight.delete(fh);
    }
  }
}
