/**
 * Modification times set on files whose content is already on Dropbox. Dropbox keeps a file's
 * mtime only as `client_modified`, set by the upload that wrote the content. An upload of
 * identical content leaves the file alone, so an mtime set after the upload (rsync sets it
 * after it closes the file) cannot reach Dropbox without new content. The mount keeps
 * such times here, keyed by file id and content hash, so that they last while the content is
 * unchanged, follow renames, and are dropped by any new content. They are saved to a file in
 * the cache folder and outlive restarts. docs/SEMANTICS.md states the limit.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.js';
import { describeError } from '../fs/errno.js';

const OVERLAY_FILE = 'mtimes.json';
const MAX_ENTRIES = 100_000;
// Saves are batched: a run of utimens calls (rsync of a tree) writes the file once per second.
const SAVE_DELAY_MS = 1_000;

export class MtimeOverlay {
  readonly #file: string | undefined;
  readonly #log: Logger;
  readonly #entries = new LRUCache<string, number>({ max: MAX_ENTRIES });
  #saveTimer: NodeJS.Timeout | undefined;

  private constructor(file: string | undefined, log: Logger) {
    this.#file = file;
    this.#log = log;
  }

  /** Loads the overlay saved in `cacheFolder`, or starts an empty one kept in memory only. */
  static async load(cacheFolder: string | undefined, log: Logger): Promise<MtimeOverlay> {
    const overlay = new MtimeOverlay(cacheFolder === undefined ? undefined : join(cacheFolder, OVERLAY_FILE), log);
    if (overlay.#file === undefined) return overlay;
    try {
      const saved = JSON.parse(await readFile(overlay.#file, 'utf8')) as Array<[string, number]>;
      for (const [key, mtimeMs] of saved) {
        if (typeof key === 'string' && typeof mtimeMs === 'number') overlay.#entries.set(key, mtimeMs);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.warn({ file: overlay.#file, err: describeError(err) }, 'saved mtimes unreadable; starting without them');
      }
    }
    return overlay;
  }

  get(id: string, contentHash: string | undefined): number | undefined {
    if (contentHash === undefined || id === '' || this.#entries.size === 0) return undefined;
    return this.#entries.get(`${id}:${contentHash}`);
  }

  set(id: string, contentHash: string | undefined, mtimeMs: number): void {
    if (contentHash === undefined || id === '') return;
    this.#entries.set(`${id}:${contentHash}`, mtimeMs);
    this.#scheduleSave();
  }

  /** Writes pending changes now; called at shutdown. */
  async flush(): Promise<void> {
    if (this.#saveTimer === undefined) return;
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    await this.#save();
  }

  #scheduleSave(): void {
    if (this.#file === undefined || this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#save();
    }, SAVE_DELAY_MS);
  }

  async #save(): Promise<void> {
    if (this.#file === undefined) return;
    const temporary = `${this.#file}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify([...this.#entries.entries()]), { mode: 0o600 });
      await rename(temporary, this.#file);
    } catch (err) {
      this.#log.warn({ file: this.#file, err: describeError(err) }, 'saving mtimes failed');
    }
  }
}
