/**
 * Builds a StatusSnapshot from the live objects of a running daemon.
 */
import type { DropboxClient } from '../dropbox/client.js';
import type { MetadataCache } from '../cache/metadata-cache.js';
import type { DropboxFilesystem } from '../fs/filesystem.js';
import type { LastErrorRecorder } from './last-error.js';
import type { StatusSnapshot } from './snapshot.js';

export interface StatusSources {
  mountpoint: string;
  /** `performance.now()` when the daemon started. */
  startedAt: number;
  client: DropboxClient;
  cache: MetadataCache;
  fs: DropboxFilesystem;
  /** Bytes returned by read operations so far. */
  bytesRead: () => number;
  lastError?: LastErrorRecorder;
}

export function collectStatus(sources: StatusSources): StatusSnapshot {
  const { client, cache, fs } = sources;
  return {
    mountpoint: sources.mountpoint,
    pid: process.pid,
    uptimeSeconds: Math.round((performance.now() - sources.startedAt) / 1000),
    apiCalls: Object.fromEntries(client.requestCounts),
    metadataCache: { hits: cache.stats.hits, misses: cache.stats.misses },
    blockCache: { hits: fs.blockCache.hits, misses: fs.blockCache.misses },
    bytesRead: sources.bytesRead(),
    openHandles: fs.openHandles,
    memory: { usedBytes: fs.budget.usedBytes, peakBytes: fs.budget.peakBytes, limitBytes: fs.budget.limitBytes },
    uploadsPending: fs.pendingUploads,
    spool: fs.spoolUsage,
    lastError: sources.lastError?.last ?? null,
  };
}
