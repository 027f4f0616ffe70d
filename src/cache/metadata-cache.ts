/**
 * The metadata cache: nodes and folder listings on lru-cache, keyed by lower-cased NFC path
 * because Dropbox paths ignore case. A listed folder resolves lookups of its children, present or
 * absent, with no API call until its TTL runs out. Concurrent misses on one key share a request.
 *
 * Invariant: a node is served from cache only while younger than `ttlMs`. Listings are bounded
 * by their total entry count, so a folder of 100,000 entries weighs what its entries weigh.
 *
 * Remote changes arrive through `applyChanges` (from the change watcher), in the order Dropbox
 * reports them. A listing or node fetched while changes were applied is returned but not kept,
 * because it may predate a change that was already applied.
 */
import { LRUCache } from 'lru-cache';
import type { DropboxClient } from '../dropbox/client.js';
import { ApiError } from '../dropbox/errors.js';
import type { ListFolderResult, Metadata } from '../dropbox/types.js';
import { Errno, FsError } from '../fs/errno.js';
import { knownExportExtensions, toNode, type NonDownloadablePolicy } from './nodes.js';
import { keyOf, mountKeyOf, splitPath, toDropboxPath } from './paths.js';
import { prefetchTree, type PrefetchOutcome } from './tree-prefetch.js';

export interface Node {
  kind: 'file' | 'dir';
  /** The name with its real case. */
  name: string;
  /** The Dropbox path used for API calls. */
  pathDisplay: string;
  id: string;
  rev?: string;
  size: number;
  mtimeMs: number;
  contentHash?: string;
  /**
   * Set on a file that only `files/export` can read: the export format, such as `markdown`.
   * `name` then ends with the format's extension and `size` is 0 until the file is exported.
   */
  exportFormat?: string;
}

export interface Listing {
  /** Children by key (lower-cased NFC name), in the order Dropbox returned them. */
  children: Map<string, Node>;
}

export interface MetadataCacheOptions {
  client: DropboxClient;
  /** Dropbox path of the mount root: `""` for the whole account or `/Some/Folder`. */
  rootPath: string;
  ttlMs: number;
  /** Upper bound on cached listing entries plus cached nodes. */
  maxEntries: number;
  /** The mtime given to folders, which Dropbox does not time-stamp. */
  dirMtimeMs: number;
  /** Listing or hiding of files that cannot be downloaded; default `export`. */
  nonDownloadable?: NonDownloadablePolicy;
}

// list_folder's `limit` is at most 2,000 and only approximate; the largest page keeps the number
// of calls per folder down.
const LIST_PAGE_LIMIT = 2000;

// Names known not to exist, kept apart from listings so that they cannot push listings out.
const MAX_NEGATIVE_ENTRIES = 10_000;

export class MetadataCache {
  readonly #options: MetadataCacheOptions;
  readonly #nodes: LRUCache<string, Node>;
  readonly #listings: LRUCache<string, Listing>;
  readonly #pendingLookups = new Map<string, Promise<Node>>();
  readonly #pendingListings = new Map<string, Promise<Listing>>();
  readonly #uncachedListings = new Set<string>();
  /** Keys of paths that `get_metadata` or an uncacheable listing reported missing. */
  readonly #negative: LRUCache<string, true>;
  #rootPath: string;
  #rootKey: string;
  /** Set while the root folder (mounted by id) is deleted: everything below it is ENOENT. */
  #rootMissing = false;
  /** Counts changes to cached listings, so that a snapshot writer can skip an unchanged cache. */
  #changeCount = 0;
  /**
   * Counts applied change batches and clears, so a fetch can tell it raced one.
   * NOTE: one counter for the whole tree, so on an account that changes more often than a
   * folder takes to list, such listings are returned but never kept.
   */
  #generation = 0;
  /** Set while a prefetch runs; lookups wait for it instead of listing folder by folder. */
  #prefetching: Promise<void> | undefined;
  readonly stats = { hits: 0, misses: 0 };

  constructor(options: MetadataCacheOptions) {
    this.#options = options;
    this.#nodes = new LRUCache({ max: Math.max(1, Math.floor(options.maxEntries / 4)), ttl: options.ttlMs });
    this.#listings = new LRUCache({
      maxSize: options.maxEntries,
      sizeCalculation: (listing) => listing.children.size + 1,
      ttl: options.ttlMs,
    });
    this.#negative = new LRUCache({ max: MAX_NEGATIVE_ENTRIES, ttl: options.ttlMs });
    this.#rootPath = options.rootPath;
    this.#rootKey = keyOf(options.rootPath);
  }

  /** The Dropbox path of the mount root, which changes when a root mounted by id moves. */
  get rootPath(): string {
    return this.#rootPath;
  }

  /** Number of changes to cached listings so far. */
  get changeCount(): number {
    return this.#changeCount;
  }

  /**
   * Re-keys the cache to a new Dropbox path of the root folder, after the root moved. Cached
   * listings stay, because they are keyed by mount path, which the move does not change.
   */
  setRootPath(rootPath: string): void {
    this.#generation++;
    this.#changeCount++;
    this.#rootPath = rootPath;
    this.#rootKey = keyOf(rootPath);
    this.#nodes.clear();
    this.#negative.clear();
  }

  /**
   * Marks the root folder deleted or back. While it is deleted, the cache is empty, every path
   * below the root is ENOENT and the root lists as empty.
   */
  setRootMissing(missing: boolean): void {
    if (missing) this.clear();
    this.#rootMissing = missing;
  }

  get rootMissing(): boolean {
    return this.#rootMissing;
  }

  rootNode(): Node {
    return {
      kind: 'dir',
      name: '',
      pathDisplay: this.#rootPath,
      id: '',
      size: 0,
      mtimeMs: this.#options.dirMtimeMs,
    };
  }

  /**
   * Returns the node at a mount path from the listing of its parent, listing the parent first
   * when it is not cached. Listing costs no more calls than a `get_metadata` per path component,
   * and the siblings it brings resolve the lookups that `ls -l`, `find` and backup walks make
   * next. A parent whose listing is too large to cache is asked with `get_metadata` instead.
   * @throws FsError ENOENT when the path does not exist, and client errors otherwise.
   */
  async lookup(path: string): Promise<Node> {
    if (path === '/') return this.rootNode();
    if (this.#prefetching) await this.#prefetching;
    if (this.#rootMissing) throw new FsError(Errno.ENOENT, `${path} does not exist: the root folder was deleted`);
    const key = keyOf(path);
    const { parent, name } = splitPath(path);
    const parentKey = keyOf(parent);
    const cached = this.#nodes.get(key) ?? this.#fromListing(parentKey, name);

    if (cached !== undefined) {
      this.stats.hits++;
      return this.#found(cached, path);
    }
    if (this.#negative.has(key)) {
      this.stats.hits++;
      return this.#found(null, path);
    }

    this.stats.misses++;
    if (this.#uncachedListings.has(parentKey)) {
      return this.#singleFlight(this.#pendingLookups, key, () => this.#fetchNode(path, key));
    }
    const parentNode = await this.lookup(parent);
    if (parentNode.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${parent} is not a folder`);
    const generation = this.#generation;
    const listing = await this.listing(parent);
    const child = listing.children.get(keyOf(name)) ?? null;
    // A listing too large to cache is fetched for this name only once, and the negative entry
    // saves a get_metadata on every later lookup of the same missing name.
    if (child === null && this.#uncachedListings.has(parentKey) && generation === this.#generation) {
      this.#negative.set(key, true);
    }
    return this.#found(child, path);
  }

  /**
   * Returns the listing of the folder at a mount path, following `has_more` until complete.
   * @throws FsError ENOTDIR or ENOENT, and client errors.
   */
  async listing(path: string): Promise<Listing> {
    if (this.#prefetching) await this.#prefetching;
    if (this.#rootMissing) {
      if (path === '/') return { children: new Map() };
      throw new FsError(Errno.ENOENT, `${path} does not exist: the root folder was deleted`);
    }
    const key = keyOf(path);
    const cached = this.#listings.get(key);
    if (cached) {
      this.stats.hits++;
      return cached;
    }
    this.stats.misses++;
    return this.#singleFlight(this.#pendingListings, key, () => this.#fetchListing(path, key));
  }

  /** Drops everything cached, for tests and for a remote change the cache cannot apply. */
  clear(): void {
    this.#generation++;
    this.#changeCount++;
    this.#nodes.clear();
    this.#listings.clear();
    this.#uncachedListings.clear();
    this.#negative.clear();
  }

  /**
   * Lists the whole tree under the root in one recursive listing and caches the listing of
   * every folder. Lookups and listings made meanwhile wait for it. Returns the listings and
   * the final cursor, or `overLimit` when the tree has more than `maxEntries` entries. Then
   * nothing is cached and folders are listed one by one as before.
   * @throws client errors; lookups then list folder by folder.
   */
  async prefetch(maxEntries: number): Promise<PrefetchOutcome> {
    const { client, dirMtimeMs, nonDownloadable } = this.#options;
    const generation = this.#generation;
    const running = prefetchTree({ client, rootPath: this.#rootPath, maxEntries, dirMtimeMs, nonDownloadable });
    this.#prefetching = running.then(
      () => undefined,
      () => undefined,
    );
    try {
      const outcome = await running;
      if ('listings' in outcome && generation === this.#generation) {
        for (const [key, listing] of outcome.listings) this.#store(key, listing);
      }
      return outcome;
    } finally {
      this.#prefetching = undefined;
    }
  }

  /**
   * Applies remote changes from `list_folder/continue`, in order: a file or folder replaces the
   * entry at its path in its parent's listing when that listing is cached, and a deletion
   * removes it. A deletion, a file, or a folder where none was, also drops everything cached
   * under that path, because a folder's contents there are gone or unknown.
   */
  applyChanges(entries: readonly Metadata[]): void {
    if (entries.length === 0) return;
    this.#generation++;
    this.#changeCount++;
    const droppedSubtrees = new Set<string>();
    for (const entry of entries) {
      const key = mountKeyOf(this.#rootKey, entry.path_lower ?? entry.path_display ?? '');
      if (key === undefined) continue;
      if (key === '/') {
        // The root folder itself: only its deletion matters, and then nothing cached is valid.
        if (entry['.tag'] === 'deleted') {
          this.clear();
          droppedSubtrees.clear();
        }
        continue;
      }
      const { parent } = splitPath(key);
      const parentListing = this.#listings.get(parent);
      const childKey = keyOf(entry.name);
      const previous = parentListing?.children.get(childKey) ?? this.#nodes.peek(key);
      const node = toNode(entry, this.#options.dirMtimeMs, this.#options.nonDownloadable);
      // An exported file is listed under its export's name, which a deletion does not carry, so
      // every exported name of the entry goes too.
      for (const staleKey of [childKey, ...exportedKeys(childKey, parentListing)]) {
        const mountKey = parent === '/' ? `/${staleKey}` : `${parent}/${staleKey}`;
        this.#negative.delete(mountKey);
        this.#nodes.delete(mountKey);
        if (staleKey !== childKey || node === undefined) parentListing?.children.delete(staleKey);
      }
      if (node !== undefined) {
        const nodeKey = keyOf(node.name);
        const mountKey = parent === '/' ? `/${nodeKey}` : `${parent}/${nodeKey}`;
        this.#negative.delete(mountKey);
        this.#nodes.delete(mountKey);
        if (nodeKey !== childKey) parentListing?.children.delete(childKey);
        parentListing?.children.set(nodeKey, node);
      }
      if (node === undefined || node.kind === 'file' || previous?.kind !== 'dir') droppedSubtrees.add(key);
    }
    if (droppedSubtrees.size > 0) this.#dropSubtrees(droppedSubtrees);
  }

  // Drops every listing, node and negative entry at or below the given keys, in one pass over
  // each cache, so that a batch of 2,000 changes costs one walk and not 2,000.
  #dropSubtrees(roots: ReadonlySet<string>): void {
    const isDropped = (key: string): boolean => {
      for (let ancestor = key; ancestor.length > 1; ancestor = ancestor.slice(0, ancestor.lastIndexOf('/'))) {
        if (roots.has(ancestor)) return true;
      }
      return false;
    };
    // Keys are collected first, because lru-cache does not promise a walk that survives deletes.
    const dropFrom = (cache: { keys(): Iterable<string>; delete(key: string): boolean }): void => {
      for (const key of [...cache.keys()].filter(isDropped)) cache.delete(key);
    };
    dropFrom(this.#listings);
    dropFrom(this.#nodes);
    dropFrom(this.#negative);
    for (const key of [...this.#uncachedListings]) {
      if (isDropped(key)) this.#uncachedListings.delete(key);
    }
  }

  #store(key: string, listing: Listing): void {
    // lru-cache refuses an item larger than maxSize; such a folder answers lookups with
    // get_metadata rather than being listed again for every name.
    this.#changeCount++;
    if (listing.children.size + 1 > this.#options.maxEntries) this.#uncachedListings.add(key);
    else this.#listings.set(key, listing);
  }

  /** Returns every cached listing that has not expired, by the key of its folder's mount path. */
  listingsSnapshot(): Array<[string, Listing]> {
    return [...this.#listings.entries()];
  }

  /** Caches listings loaded from a snapshot, as if they had just been listed. */
  loadListings(listings: Iterable<[string, Listing]>): void {
    for (const [key, listing] of listings) this.#store(key, listing);
  }

  // Returns the child from a cached listing, null when the listing lacks it, or undefined
  // when the folder is not listed.
  #fromListing(parentKey: string, name: string): Node | null | undefined {
    const listing = this.#listings.get(parentKey);
    if (!listing) return undefined;
    return listing.children.get(keyOf(name)) ?? null;
  }

  #found(node: Node | null, path: string): Node {
    if (node === null) throw new FsError(Errno.ENOENT, `${path} does not exist`);
    return node;
  }

  async #fetchNode(path: string, key: string): Promise<Node> {
    const { dirMtimeMs, nonDownloadable } = this.#options;
    const generation = this.#generation;
    let metadata: Metadata;
    try {
      metadata = await this.#fetchMetadata(path);
    } catch (err) {
      if (err instanceof ApiError && err.has('not_found') && generation === this.#generation) {
        this.#negative.set(key, true);
      }
      throw err;
    }
    let node = toNode(metadata, dirMtimeMs, nonDownloadable);
    // A name found only without its export extension must be that file's exported name.
    if (node !== undefined && keyOf(node.name) !== keyOf(splitPath(path).name)) node = undefined;
    const unchanged = generation === this.#generation;
    if (!node) {
      if (unchanged) this.#negative.set(key, true);
      throw new FsError(Errno.ENOENT, `${path} does not exist`);
    }
    if (unchanged) this.#nodes.set(key, node);
    return node;
  }

  // Returns the metadata at a mount path. A name with an export extension after another
  // extension (`Notes.paper.md`) that Dropbox does not know is requested again without the export
  // extension, because it may name an exported file. A name such as `notes.txt` is not, so that
  // a missing plain file costs one call.
  async #fetchMetadata(path: string): Promise<Metadata> {
    const { client } = this.#options;
    const dropboxPath = toDropboxPath(this.#rootPath, path);
    try {
      return await client.rpc<Metadata>('files/get_metadata', { path: dropboxPath });
    } catch (err) {
      if (!(err instanceof ApiError && err.has('not_found')) || this.#options.nonDownloadable === 'hide') throw err;
      const lowerName = splitPath(path).name.toLowerCase();
      const extension = knownExportExtensions().find((ext) => lowerName.endsWith(ext));
      if (extension === undefined || !lowerName.slice(0, -extension.length).includes('.')) throw err;
      const metadata = await client.rpc<Metadata>('files/get_metadata', {
        path: dropboxPath.slice(0, -extension.length),
      });
      if (metadata['.tag'] !== 'file' || metadata.is_downloadable !== false) throw err;
      return metadata;
    }
  }

  async #fetchListing(path: string, key: string): Promise<Listing> {
    const { client, dirMtimeMs, nonDownloadable } = this.#options;
    const generation = this.#generation;
    let page = await client.rpc<ListFolderResult>('files/list_folder', {
      path: toDropboxPath(this.#rootPath, path),
      limit: LIST_PAGE_LIMIT,
    });
    const children = new Map<string, Node>();
    for (;;) {
      for (const entry of page.entries) {
        const node = toNode(entry, dirMtimeMs, nonDownloadable);
        const childKey = keyOf(node?.name ?? entry.name);
        if (node && !children.has(childKey)) children.set(childKey, node);
      }
      if (!page.has_more) break;
      page = await client.rpc<ListFolderResult>('files/list_folder/continue', {
        cursor: page.cursor,
      });
    }
    const listing: Listing = { children };
    if (generation === this.#generation) this.#store(key, listing);
    else if (children.size + 1 > this.#options.maxEntries) this.#uncachedListings.add(key);
    return listing;
  }

  async #singleFlight<T>(
    pending: Map<string, Promise<T>>,
    key: string,
    fetch: () => Promise<T>,
  ): Promise<T> {
    const existing = pending.get(key);
    if (existing) return existing;
    const promise = fetch().finally(() => pending.delete(key));
    pending.set(key, promise);
    return promise;
  }
}

// Returns the keys in `listing` of the exported names of the entry whose own key is `childKey`.
function exportedKeys(childKey: string, listing: Listing | undefined): string[] {
  if (listing === undefined) return [];
  const keys: string[] = [];
  for (const extension of knownExportExtensions()) {
    const key = childKey + extension;
    if (listing.children.get(key)?.exportFormat !== undefined) keys.push(key);
  }
  return keys;
}
