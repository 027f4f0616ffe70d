/**
 * The change watcher: keeps the metadata cache in step with Dropbox. It keeps a recursive
 * cursor for the mount root, waits on `list_folder/longpoll` (notify host, no Authorization
 * header) until something changes, then applies the changes from `list_folder/continue` to the
 * cache in the order Dropbox returns them.
 *
 * On a `reset` error, or a cursor the server no longer accepts, it takes a new cursor and drops
 * everything cached, because the changes in between cannot be replayed. Other errors are
 * retried with exponential backoff, so the loop never spins on a failing server.
 *
 * A root mounted by id (`rootId`) is followed: when the changes report the root's path deleted,
 * or the cursor's path is not found, the watcher requests `get_metadata` of the id. A folder found
 * at a new path re-keys the cache to that path and keeps what it holds. A root that is gone
 * leaves the cache empty and every path below the root ENOENT, and the id is asked again every
 * `rootCheckMs` until the folder reappears.
 */
import type { DropboxClient } from '../dropbox/client.js';
import { ApiError, BadRequestError } from '../dropbox/errors.js';
import type { ListFolderResult, Metadata } from '../dropbox/types.js';
import { describeError } from '../fs/errno.js';
import type { Logger } from '../log/logger.js';
import type { MetadataCache } from './metadata-cache.js';
import { keyOf } from './paths.js';

export interface ChangeWatcherOptions {
  client: DropboxClient;
  cache: MetadataCache;
  /** Dropbox path of the mount root: `""` for the whole account or `/Some/Folder`. */
  rootPath: string;
  /** The `id:...` the root was mounted by, so that the watcher follows it when it moves. */
  rootId?: string;
  /** Ms between checks for a root (mounted by id) that was deleted; default 2,000. */
  rootCheckMs?: number;
  log: Logger;
  /** Seconds a longpoll waits for a change, 30 to 480 as Dropbox accepts; default 30. */
  longpollTimeoutSeconds?: number;
  /** First and largest delay between attempts after an error, in ms; default 1,000 and 60,000. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Ms between a longpoll that reports changes and the continue that fetches them; default 250. */
  batchDelayMs?: number;
}

interface LongpollResult {
  changes: boolean;
  /** Seconds to wait before the next longpoll. */
  backoff?: number;
}

const DEFAULT_LONGPOLL_TIMEOUT_SECONDS = 30;
// Short next to the seconds a remote change may take to show, and long enough to gather the
// changes of a burst of commits, each a few milliseconds apart on a fast link.
const DEFAULT_BATCH_DELAY_MS = 250;
// ListFolderLongpollArg.timeout (Dropbox API v2 docs): the request blocks up to `timeout` plus
// up to 90 s of random jitter, so the HTTP timeout is that sum plus a margin for the network.
const LONGPOLL_JITTER_SECONDS = 90;
const LONGPOLL_MARGIN_SECONDS = 30;

/** Raised inside the loop when the watcher is stopped, to leave it from any await. */
class StoppedError extends Error {}

/** Raised inside the loop when the changes report the root (mounted by id) deleted. */
class RootGoneError extends Error {}

const DEFAULT_ROOT_CHECK_MS = 2_000;

export class ChangeWatcher {
  readonly #options: ChangeWatcherOptions;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #rootPath: string;
  #cursor: string | undefined;

  constructor(options: ChangeWatcherOptions) {
    this.#options = options;
    this.#rootPath = options.rootPath;
  }

  /**
   * The cursor after the last change applied to the cache, or undefined before the first.
   * Replaying changes after it onto the cache as it is now does no harm.
   */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  /**
   * Starts the watch loop in the background. `initialCursor` resolves to a final cursor to
   * continue from, such as a prefetch's, or to undefined to start from the current state.
   */
  start(initialCursor: Promise<string | undefined> = Promise.resolve(undefined)): void {
    if (this.#loop !== undefined) throw new Error('the change watcher is already running');
    this.#loop = this.#run(initialCursor).catch((err: unknown) => {
      if (!(err instanceof StoppedError)) {
        this.#options.log.error({ err: describeError(err) }, 'change watcher stopped by an error');
      }
    });
  }

  /** Stops the loop and waits for it to end; a request in flight is abandoned, not awaited. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(initialCursor: Promise<string | undefined>): Promise<void> {
    const { cache, log } = this.#options;
    let cursor = await this.#untilStopped(initialCursor.catch(() => undefined));
    this.#cursor = cursor;
    let cacheIsStale = false;
    let failures = 0;
    log.info({ seeded: cursor !== undefined }, 'change watcher started');
    for (;;) {
      try {
        if (cursor === undefined) {
          cursor = await this.#latestCursor();
          this.#cursor = cursor;
          // Cleared only once the new cursor exists: anything listed from here on is at least as
          // new as the cursor, and replaying a change onto it again does no harm.
          if (cacheIsStale) {
            cache.clear();
            cacheIsStale = false;
            log.info('metadata cache cleared after a cursor reset');
          }
        }
        const poll = await this.#longpoll(cursor);
        if (poll.changes) {
          // A burst of changes (a copy into the mount, a sync elsewhere) wakes the longpoll at
          // its first change. A short wait lets one continue call fetch the rest of the burst.
          await this.#sleep(this.#options.batchDelayMs ?? DEFAULT_BATCH_DELAY_MS);
          cursor = await this.#applyChanges(cursor);
        }
        this.#cursor = cursor;
        failures = 0;
        if (poll.backoff !== undefined && poll.backoff > 0) {
          log.debug({ seconds: poll.backoff }, 'longpoll asked for backoff');
          await this.#sleep(poll.backoff * 1000);
        }
      } catch (err) {
        if (err instanceof StoppedError || this.#abort.signal.aborted) throw new StoppedError();
        failures++;
        if (this.#options.rootId !== undefined && (err instanceof RootGoneError || isNotFound(err))) {
          await this.#relocateRoot(this.#options.rootId);
          cursor = undefined;
          // The first relocation goes on at once. Another before a good poll waits like any
          // other failure, so a path that get_metadata finds but listing does not cannot spin.
          if (failures === 1) continue;
          await this.#sleep(this.#retryDelayMs(failures));
          continue;
        }
        // A cursor lost once is taken again at once. A second loss before a good poll, or
        // an error while taking a new cursor, waits like any other failure.
        if (cursor !== undefined && isLostCursor(err)) {
          log.warn({ err: describeError(err), failures }, 'change cursor reset; dropping the metadata cache');
          cursor = undefined;
          cacheIsStale = true;
          if (failures === 1) continue;
        }
        const delayMs = this.#retryDelayMs(failures);
        log.warn({ err: describeError(err), failures, delayMs }, 'watching for changes failed; retrying');
        await this.#sleep(delayMs);
      }
    }
  }

  async #latestCursor(): Promise<string> {
    // Deletions come back from continue whether or not the cursor asked for them.
    const { cursor } = await this.#untilStopped(
      this.#options.client.rpc<{ cursor: string }>('files/list_folder/get_latest_cursor', {
        path: this.#rootPath,
        recursive: true,
      }),
    );
    return cursor;
  }

  async #longpoll(cursor: string): Promise<LongpollResult> {
    const timeout = this.#options.longpollTimeoutSeconds ?? DEFAULT_LONGPOLL_TIMEOUT_SECONDS;
    return this.#untilStopped(
      this.#options.client.notifyRpc<LongpollResult>(
        'files/list_folder/longpoll',
        { cursor, timeout },
        {
          timeoutMs: (timeout + LONGPOLL_JITTER_SECONDS + LONGPOLL_MARGIN_SECONDS) * 1000,
          signal: this.#abort.signal,
        },
      ),
    );
  }

  // Applies every page of changes after `cursor` and returns the cursor after the last page.
  async #applyChanges(cursor: string): Promise<string> {
    const { client, cache, log } = this.#options;
    let next = cursor;
    let count = 0;
    for (;;) {
      const page = await this.#untilStopped(
        client.rpc<ListFolderResult>('files/list_folder/continue', { cursor: next }),
      );
      const rootGone = this.#rootDeletionIndex(page.entries);
      if (rootGone !== -1) {
        // The changes after the root's deletion name its old path, so they are left to the
        // cursor taken once the root is found again.
        cache.applyChanges(page.entries.slice(0, rootGone));
        throw new RootGoneError();
      }
      cache.applyChanges(page.entries);
      count += page.entries.length;
      next = page.cursor;
      if (!page.has_more) break;
    }
    log.debug({ changes: count }, 'remote changes applied');
    return next;
  }

  // Returns the index of the deletion of the root's own path, or -1. Only a root mounted by id
  // is followed; for a root mounted by path the cache drops everything (applyChanges).
  #rootDeletionIndex(entries: readonly Metadata[]): number {
    if (this.#options.rootId === undefined) return -1;
    const rootKey = keyOf(this.#rootPath);
    return entries.findIndex(
      (entry) => entry['.tag'] === 'deleted' && keyOf(entry.path_lower ?? entry.path_display ?? '') === rootKey,
    );
  }

  // Finds the root folder by its id and re-keys the cache to its path. While the id is not
  // found, lookups below the root return ENOENT and the id is looked up again.
  async #relocateRoot(rootId: string): Promise<void> {
    const { client, cache, log } = this.#options;
    for (;;) {
      let metadata: Metadata | undefined;
      try {
        metadata = await this.#untilStopped(client.rpc<Metadata>('files/get_metadata', { path: rootId }));
      } catch (err) {
        if (err instanceof StoppedError) throw err;
        if (!isNotFound(err)) {
          log.warn({ err: describeError(err), rootId }, 'looking up the root folder by id failed; retrying');
        }
      }
      if (metadata?.['.tag'] === 'folder') {
        const path = metadata.path_display ?? metadata.path_lower ?? '';
        if (cache.rootMissing) {
          log.info({ rootId, rootPath: path }, 'root folder is back; serving it again');
          cache.setRootMissing(false);
        }
        if (path !== this.#rootPath) {
          log.info({ rootId, from: this.#rootPath, to: path }, 'root folder moved; following it');
          this.#rootPath = path;
          cache.setRootPath(path);
        }
        return;
      }
      if (!cache.rootMissing) {
        log.error({ rootId, rootPath: this.#rootPath }, 'root folder was deleted; paths below the mount are not found until it reappears');
        cache.setRootMissing(true);
      }
      await this.#sleep(this.#options.rootCheckMs ?? DEFAULT_ROOT_CHECK_MS);
    }
  }

  #retryDelayMs(failures: number): number {
    const base = this.#options.retryBaseMs ?? 1_000;
    const max = this.#options.retryMaxMs ?? 60_000;
    const ceiling = Math.min(max, base * 2 ** (failures - 1));
    // Half fixed and half random, so that many daemons do not retry in step.
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  #sleep(ms: number): Promise<void> {
    return this.#untilStopped(
      new Promise<void>((resolve) => {
        setTimeout(resolve, ms).unref();
      }),
    );
  }

  // Races a promise against stop(), which must not wait for a request that only
  // DropboxClient.close() ends.
  #untilStopped<T>(promise: Promise<T>): Promise<T> {
    const { signal } = this.#abort;
    if (signal.aborted) return Promise.reject(new StoppedError());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new StoppedError());
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }
}

// `reset` means "list again". A 400 on a cursor, or `path/not_found` because the root moved,
// also leaves nothing to continue from.
function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.has('not_found');
}

function isLostCursor(err: unknown): boolean {
  if (err instanceof ApiError) return err.has('reset') || err.has('not_found');
  return err instanceof BadRequestError;
}
