/**
 * The figures `dropbox-mount status` prints, and their plain-text form.
 */
import type { LastError } from './last-error.js';

export interface StatusSnapshot {
  mountpoint: string;
  pid: number;
  uptimeSeconds: number;
  /** Requests sent to Dropbox by route, retries and token refreshes included. */
  apiCalls: Record<string, number>;
  metadataCache: { hits: number; misses: number };
  blockCache: { hits: number; misses: number };
  /** Bytes returned to the kernel by read operations. */
  bytesRead: number;
  openHandles: number;
  memory: { usedBytes: number; peakBytes: number; limitBytes: number };
  /** Files whose content is not on Dropbox yet. */
  uploadsPending: number;
  /** Bytes in the write spool and its limit; both 0 on a read-only mount. */
  spool: { usedBytes: number; limitBytes: number };
  lastError: LastError | null;
}

/** Formats a snapshot as aligned `name  value` lines for a terminal. */
export function formatStatus(status: StatusSnapshot): string {
  const routes = Object.entries(status.apiCalls).sort(([a], [b]) => a.localeCompare(b));
  const totalCalls = routes.reduce((sum, [, count]) => sum + count, 0);
  const lines: [string, string][] = [
    ['mountpoint', status.mountpoint],
    ['pid', String(status.pid)],
    ['uptime', formatDuration(status.uptimeSeconds)],
    ['api calls', String(totalCalls)],
    ...routes.map(([route, count]): [string, string] => [`  ${route}`, String(count)]),
    ['metadata cache', `${status.metadataCache.hits} hits, ${status.metadataCache.misses} misses`],
    ['block cache', `${status.blockCache.hits} hits, ${status.blockCache.misses} misses`],
    ['bytes read', formatBytes(status.bytesRead)],
    ['open handles', String(status.openHandles)],
    [
      'memory',
      `${formatBytes(status.memory.usedBytes)} used, ${formatBytes(status.memory.peakBytes)} peak, ` +
        `${formatBytes(status.memory.limitBytes)} limit`,
    ],
    ['uploads pending', String(status.uploadsPending)],
    ['write spool', `${formatBytes(status.spool.usedBytes)} used, ${formatBytes(status.spool.limitBytes)} limit`],
    ['last error', status.lastError ? `${status.lastError.time} ${status.lastError.level}: ${status.lastError.message}` : 'none'],
  ];
  const width = Math.max(...lines.map(([name]) => name.length)) + 2;
  return lines.map(([name, value]) => `${name.padEnd(width)}${value}`).join('\n') + '\n';
}

function formatDuration(totalSeconds: number): string {
  const seconds = Math.floor(totalSeconds);
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const parts = [days > 0 ? `${days}d` : '', days + hours > 0 ? `${hours}h` : '', `${minutes}m`, `${seconds % 60}s`];
  return parts.filter(Boolean).join(' ');
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]} (${bytes} bytes)`;
}
