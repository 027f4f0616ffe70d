/**
 * Finds changes made to the data folder outside the API and journals them.
 *
 * Two sources, because `fs.watch(dir, { recursive: true })` on Linux with Node 20 is built
 * from one inotify watch per folder, added after the folder appears, and misses events in
 * a folder created and filled at once or when inotify runs out of watches:
 * - the watcher names the folders that changed; they are rescanned (non-recursively, plus
 *   any new subfolder) WATCH_SETTLE_MS after the last event;
 * - a full scan runs every `scanIntervalMs`, or every 20 scan durations when that is
 *   longer, and catches what the watcher missed. The bound keeps the scan below 5% of one
 *   core: a full scan of 20,000 files in 200 folders took 300 ms (measured once on the
 *   development VM, 2 cores, ext4 under /tmp), so such a tree is scanned every 6 s.
 * A new folder created and filled at once is covered by the watcher too: the event for the
 * folder rescans its parent, which descends into every new subfolder.
 * NOTE: when the watcher fails (e.g. inotify's watch limit), changes are seen only by the
 * periodic scan, so a longpoll may wake later than one second after a change.
 */

import { watch, type FSWatcher } from 'node:fs';
import { dirname, sep } from 'node:path';
import type { AccountState } from './account-state.js';
import { DATA_CACHE_NAME } from './state-folder.js';

// Editors and `cp -r` emit bursts of events; one rescan after the burst is enough.
const WATCH_SETTLE_MS = 30;
// The periodic scan waits at least this many times its own last duration.
const SCAN_DUTY_FACTOR = 20;

export const DEFAULT_SCAN_INTERVAL_MS = 2000;

export class DataWatcher {
  private watcher: FSWatcher | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly touched = new Set<string>();
  private fullScanRunning = false;

  constructor(
    private readonly state: AccountState,
    private readonly scanIntervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    try {
      this.watcher = watch(this.state.folder.root, { recursive: true }, (_event, filename) => {
        this.touch(filename === null ? '' : String(filename));
      });
      this.watcher.on('error', (error) => this.onError(error));
    } catch (error) {
      // Without a watcher, the periodic scan still finds every change.
      this.onError(error);
    }
    this.scheduleScan(0);
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.scanTimer);
    clearTimeout(this.settleTimer);
  }

  private scheduleScan(lastDurationMs: number): void {
    if (this.scanIntervalMs <= 0 || this.stopped) {
      return;
    }
    const delay = Math.max(this.scanIntervalMs, SCAN_DUTY_FACTOR * lastDurationMs);
    this.scanTimer = setTimeout(() => {
      const started = performance.now();
      void this.scanAll().finally(() => this.scheduleScan(performance.now() - started));
    }, delay);
    this.scanTimer.unref();
  }

  /** Rescans the folders the watcher reported so far; resolves when they are journaled. */
  async flush(): Promise<void> {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    const folders = [...this.touched];
    this.touched.clear();
    if (folders.length > 0) {
      await this.state.exclusive(async () => {
        for (const folder of folders) {
          await this.scanRelative(folder);
        }
      });
    }
  }

  /** Scans the whole data folder; resolves when every change is journaled. */
  async scanAll(): Promise<void> {
    if (this.fullScanRunning) {
      return;
    }
    this.fullScanRunning = true;
    try {
      await this.state.exclusive(() => this.state.scanLocked(undefined, true));
    } catch (error) {
      this.onError(error);
    } finally {
      this.fullScanRunning = false;
    }
  }

  private touch(relative: string): void {
    if (relative === DATA_CACHE_NAME || relative.startsWith(DATA_CACHE_NAME + sep)) {
      return;
    }
    // The entry itself may be a new folder, and its parent lists it.
    this.touched.add(relative);
    this.touched.add(dirname(relative) === '.' ? '' : dirname(relative));
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.flush().catch(this.onError), WATCH_SETTLE_MS);
    this.settleTimer.unref();
  }

  /** Scans the folder at a path relative to the root, or its nearest existing ancestor. */
  private async scanRelative(relative: string): Promise<void> {
    const root = await this.state.folder.rootEntry();
    let components = relative === '' ? [] : relative.split(sep);
    while (true) {
      const entry = await this.state.folder.resolve(root, components);
      if (entry !== null && entry.kind === 'folder') {
        await this.state.scanLocked(entry, false);
        return;
      }
      if (entry !== null || components.length === 0) {
        return;
      }
      components = components.slice(0, -1);
    }
  }
}
