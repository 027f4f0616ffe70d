/**
 * Content hashes computed on demand and cached by file version (device, inode, mtime in ns,
 * size), so a listing hashes only files it has not seen in that version. Hashing streams the
 * file in 1 MiB reads, so the event loop keeps serving other requests meanwhile, and at most
 * HASH_CONCURRENCY files are read at once.
 */

import type { BigIntStats } from 'node:fs';
import { lstat, type FileHandle } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { contentHashOfFile, contentHashOfHandle } from '../dropbox/content-hash.js';

// Enough for the largest trees the tests and benchmarks build (about 10,000 files) several
// times over; one cached entry costs about 150 bytes.
const MAX_CACHED_HASHES = 200_000;

// A few parallel reads overlap file I/O with hashing. SHA-256 runs on the main thread, so
// more parallel files would only queue there.
const HASH_CONCURRENCY = 4;

// A file still changing after this many hashes is reported with the last hash, which may
// mix versions. Only a file written continuously during the request reaches this limit.
const MAX_ATTEMPTS = 3;

/** A content hash together with the file version it belongs to. */
export interface HashedVersion {
  contentHash: string;
  stat: BigIntStats;
}

export class ContentHashCache {
  private readonly cache = new LRUCache<string, string>({ max: MAX_CACHED_HASHES });
  private readonly inFlight = new Map<string, Promise<string>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;

  /**
   * Returns the content hash of the file at `diskPath`, starting from the version `stat`
   * describes. When the file changed meanwhile, the result carries the stat of the version
   * that was hashed, so callers build metadata that matches the hash. Rejects with the fs
   * error when the file is gone.
   */
  async hashOf(diskPath: string, stat: BigIntStats): Promise<HashedVersion> {
    let current = stat;
    for (let attempt = 1; ; attempt++) {
      const key = versionKey(current);
      const cached = this.cache.get(key);
      if (cached !== undefined) {
        return { contentHash: cached, stat: current };
      }
      const contentHash = await this.hashOnce(key, diskPath);
      const after = await lstat(diskPath, { bigint: true });
      if (versionKey(after) === key) {
        this.cache.set(key, contentHash);
        return { contentHash, stat: current };
      }
      if (attempt === MAX_ATTEMPTS) {
        return { contentHash, stat: after };
      }
      current = after;
    }
  }

  /** Returns the cached hash for the version `stat` describes, without reading the file. */
  peek(stat: BigIntStats): string | undefined {
    return this.cache.get(versionKey(stat));
  }

  /**
   * Returns the content hash of an open file whose fstat gave `stat`, caching it when the
   * file is unchanged after reading.
   */
  async hashHandle(handle: FileHandle, stat: BigIntStats): Promise<string> {
    const key = versionKey(stat);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      return cached;
    }
    const contentHash = await this.withSlot(() => contentHashOfHandle(handle));
    if (versionKey(await handle.stat({ bigint: true })) === key) {
      this.cache.set(key, contentHash);
    }
    return contentHash;
  }

  private hashOnce(key: string, diskPath: string): Promise<string> {
    const pending = this.inFlight.get(key);
    if (pending !== undefined) {
      return pending;
    }
    const started = this.withSlot(() => contentHashOfFile(diskPath));
    this.inFlight.set(key, started);
    const forget = () => this.inFlight.delete(key);
    started.then(forget, forget);
    return started;
  }

  private async withSlot<T>(task: () => Promise<T>): Promise<T> {
    while (this.running >= HASH_CONCURRENCY) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** True when both stats describe the same version of the same file. */
export function isSameVersion(a: BigIntStats, b: BigIntStats): boolean {
  return versionKey(a) === versionKey(b);
}

function versionKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.mtimeNs}:${stat.size}`;
}
