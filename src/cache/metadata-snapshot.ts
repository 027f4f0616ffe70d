/**
 * The metadata cache on disk (`--metadata-cache`): the cached folder listings and the change
 * watcher's cursor in one JSON file, so that a restarted mount catches up with
 * `list_folder/continue` from the cursor instead of listing the tree again.
 *
 * The file is written whole to a temporary file (mode 0600) in the same folder and renamed over
 * the old one, so a crash leaves the old snapshot or the new one, never a mix. It is written on
 * a timer when the cache changed, and at shutdown. A snapshot is used only for the same API URL
 * and root, and only with a cursor, because without one the changes since cannot be replayed.
 */
import { open, rename, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DropboxClient } from '../dropbox/client.js';
import { ApiError, BadRequestError } from '../dropbox/errors.js';
import type { ListFolderResult } from '../dropbox/types.js';
import { describeError } from '../fs/errno.js';
import type { Logger } from '../log/logger.js';
import type { Listing, MetadataCache, Node } from './metadata-cache.js';
import { keyOf } from './paths.js';

const SNAPSHOT_VERSION = 1;
/** File name used when `--metadata-cache` names a folder. */
export const SNAPSHOT_FILE_NAME = 'metadata-cache.json';
/** Default ms between snapshot writes while the cache changes. */
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 60_000;

/** The API URL and root a snapshot belongs to. A snapshot of another URL or root is not used. */
export interface SnapshotIdentity {
  apiUrl: string;
  /** The root as configured: `""`, a path or an `id:`. */
  root: string;
}

interface SnapshotFile extends SnapshotIdentity {
  version: number;
  savedAt: string;
  /** The Dropbox path the root had when the snapshot was written. */
  rootPath: string;
  cursor: string;
  /** Listings by the key of their folder's mount path, children in listing order. */
  listings: Array<[string, Node[]]>;
}

export interface LoadedSnapshot {
  rootPath: string;
  cursor: string;
  listings: Array<[string, Listing]>;
  entryCount: number;
}

/** Returns the snapshot file for `--metadata-cache PATH`: PATH, or a file in it when it is a folder. */
export async function snapshotFileOf(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  return info?.isDirectory() ? join(path, SNAPSHOT_FILE_NAME) : path;
}

/**
 * Reads the snapshot. Returns undefined when there is none, or when it is unreadable or belongs
 * to another URL or root. Such a file is logged and replaced at the next write.
 */
export async function loadSnapshot(file: string, identity: SnapshotIdentity, log: Logger): Promise<LoadedSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn({ err: describeError(err), file }, 'metadata snapshot could not be read; listing the tree again');
    }
    return undefined;
  }
  let parsed: SnapshotFile;
  try {
    parsed = JSON.parse(text) as SnapshotFile;
  } catch (err) {
    log.warn({ err: describeError(err), file }, 'metadata snapshot is not valid JSON; listing the tree again');
    return undefined;
  }
  if (parsed.version !== SNAPSHOT_VERSION || parsed.apiUrl !== identity.apiUrl || parsed.root !== identity.root) {
    log.info({ file, version: parsed.version, root: parsed.root }, 'metadata snapshot is for another version, URL or root; not used');
    return undefined;
  }
  let entryCount = 0;
  const listings: Array<[string, Listing]> = parsed.listings.map(([key, nodes]) => {
    entryCount += nodes.length;
    return [key, { children: new Map(nodes.map((node) => [keyOf(node.name), node])) }];
  });
  return { rootPath: parsed.rootPath, cursor: parsed.cursor, listings, entryCount };
}

/**
 * Writes the cache's listings and `cursor` to `file` atomically: a temporary file in the same
 * folder, written with mode 0600 and synced, then renamed over `file`.
 */
export async function saveSnapshot(
  file: string,
  identity: SnapshotIdentity,
  cache: MetadataCache,
  cursor: string,
): Promise<void> {
  const snapshot: SnapshotFile = {
    version: SNAPSHOT_VERSION,
    ...identity,
    savedAt: new Date().toISOString(),
    rootPath: cache.rootPath,
    cursor,
    listings: cache.listingsSnapshot().map(([key, listing]) => [key, [...listing.children.values()]]),
  };
  const temporary = join(dirname(file), `.${SNAPSHOT_FILE_NAME}.${process.pid}.tmp`);
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(snapshot));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/**
 * Applies every change after `cursor` to the cache with `list_folder/continue` and returns the
 * cursor after the last page, or undefined when Dropbox no longer accepts the cursor (`reset`,
 * a 400, or the root not found). The caller then drops the loaded listings.
 * @throws client errors other than those.
 */
export async function catchUp(client: DropboxClient, cache: MetadataCache, cursor: string): Promise<string | undefined> {
  let next = cursor;
  for (;;) {
    let page: ListFolderResult;
    try {
      page = await client.rpc<ListFolderResult>('files/list_folder/continue', { cursor: next });
    } catch (err) {
      if (err instanceof BadRequestError) return undefined;
      if (err instanceof ApiError && (err.has('reset') || err.has('not_found'))) return undefined;
      throw err;
    }
    cache.applyChanges(page.entries);
    next = page.cursor;
    if (!page.has_more) return next;
  }
}

/** Writes snapshots on a timer while the cache changes, and once more at `stop()`. */
export class SnapshotWriter {
  readonly #file: string;
  readonly #identity: SnapshotIdentity;
  readonly #cache: MetadataCache;
  readonly #cursor: () => string | undefined;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #writtenChangeCount = -1;
  #writtenCursor: string | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(options: {
    file: string;
    identity: SnapshotIdentity;
    cache: MetadataCache;
    /** The watcher's cursor; no snapshot is written while it is undefined. */
    cursor: () => string | undefined;
    log: Logger;
    intervalMs?: number;
  }) {
    this.#file = options.file;
    this.#identity = options.identity;
    this.#cache = options.cache;
    this.#cursor = options.cursor;
    this.#log = options.log;
    this.#timer = setInterval(() => void this.write(), options.intervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Writes a snapshot unless nothing changed since the last one; logs and keeps a failure. */
  write(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writeIfChanged());
    return this.#writing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.write();
  }

  async #writeIfChanged(): Promise<void> {
    const cursor = this.#cursor();
    const changeCount = this.#cache.changeCount;
    if (cursor === undefined || this.#cache.rootMissing) return;
    if (changeCount === this.#writtenChangeCount && cursor === this.#writtenCursor) return;
    const started = performance.now();
    try {
      await saveSnapshot(this.#file, this.#identity, this.#cache, cursor);
      this.#writtenChangeCount = changeCount;
      this.#writtenCursor = cursor;
      this.#log.debug({ file: this.#file, ms: Math.round(performance.now() - started) }, 'metadata snapshot written');
    } catch (err) {
      this.#log.warn({ err: describeError(err), file: this.#file }, 'writing the metadata snapshot failed; retrying at the next interval');
    }
  }
}

/**
 * Loads the snapshot into the cache and catches up with the changes since its cursor. Returns
 * the cursor to watch from, or undefined when there is no usable snapshot; the cache is then
 * left empty. Costs one `list_folder/continue` per page of changes.
 */
export async function restoreSnapshot(options: {
  file: string;
  identity: SnapshotIdentity;
  cache: MetadataCache;
  client: DropboxClient;
  log: Logger;
}): Promise<string | undefined> {
  const { file, identity, cache, client, log } = options;
  const started = performance.now();
  const snapshot = await loadSnapshot(file, identity, log);
  if (snapshot === undefined) return undefined;
  if (snapshot.rootPath !== cache.rootPath) {
    // The cursor names the old path of a root mounted by id, whose changes it cannot follow.
    log.info({ file, saved: snapshot.rootPath, now: cache.rootPath }, 'root folder moved since the metadata snapshot; not used');
    return undefined;
  }
  cache.loadListings(snapshot.listings);
  let cursor: string | undefined;
  try {
    cursor = await catchUp(client, cache, snapshot.cursor);
  } catch (err) {
    log.warn({ err: describeError(err), file }, 'catching up from the metadata snapshot failed; listing the tree again');
  }
  if (cursor === undefined) {
    cache.clear();
    log.info({ file }, 'metadata snapshot cursor no longer valid; listing the tree again');
    return undefined;
  }
  const ms = Math.round(performance.now() - started);
  log.info({ file, folders: snapshot.listings.length, entries: snapshot.entryCount, ms }, 'metadata cache loaded from snapshot');
  return cursor;
}
