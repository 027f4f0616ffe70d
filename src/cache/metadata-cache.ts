/**
 * The metadata cache: nodes and folder listings on lru-cache, keyed by lower-cased NFC path
 * because Dropbox paths ignore case. A listed folder answers lookups of its children, present or
 * absent, with no API call until its TTL runs out; concurrent misses on one key share a request.
 *
 * Invariant: a node is served from cache only while younger than `ttlMs`. Listings are bounded
 * by their total entry count, so a folder of 100,000 entries weighs what its entries weigh.
 */
import { LRUCache } from 'lru-cache';
import type { DropboxClient } from '../dropbox/client.js';
import type { ListFolderResult, Metadata } from '../dropbox/types.js';
import { Errno, FsError } from '../fs/errno.js';
import { keyOf, splitPath, toDropboxPath } from './paths.js';

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
}

// list_folder's `limit` is at most 2,000 and only approximate; the largest page keeps the number
// of calls per folder down.
const LIST_PAGE_LIMIT = 2000;

export class MetadataCache {
  readonly #options: MetadataCacheOptions;
  readonly #nodes: LRUCache<string, Node>;
  readonly #listings: LRUCache<string, Listing>;
  readonly #pendingLookups = new Map<string, Promise<Node>>();
  readonly #pendingListings = new Map<string, Promise<Listing>>();
  readonly #uncachedListings = new Set<string>();
  readonly stats = { hits: 0, misses: 0 };

  constructor(options: MetadataCacheOptions) {
    this.#options = options;
    this.#nodes = new LRUCache({ max: Math.max(1, Math.floor(options.maxEntries / 4)), ttl: options.ttlMs });
    this.#listings = new LRUCache({
      maxSize: options.maxEntries,
      sizeCalculation: (listing) => listing.children.size + 1,
      ttl: options.ttlMs,
    });
  }

  rootNode(): Node {
    return {
      kind: 'dir',
      name: '',
      pathDisplay: this.#options.rootPath,
      id: '',
      size: 0,
      mtimeMs: this.#options.dirMtimeMs,
    };
  }

  /**
   * Returns the node at a mount path from the listing of its parent, listing the parent first
   * when it is not cached. Listing costs no more calls than a `get_metadata` per path component,
   * and the siblings it brings answer the lookups that `ls -l`, `find` and backup walks make
   * next. A parent whose listing is too large to cache is asked with `get_metadata` instead.
   * @throws FsError ENOENT when the path does not exist, and client errors otherwise.
   */
  async lookup(path: string): Promise<Node> {
    if (path === '/') return this.rootNode();
    const key = keyOf(path);
    const { parent, name } = splitPath(path);
    const parentKey = keyOf(parent);
    const cached = this.#nodes.get(key) ?? this.#fromListing(parentKey, name);
    if (cached !== undefined) {
      this.stats.hits++;
      return this.#found(cached, path);
    }
    this.stats.misses++;
    if (this.#uncachedListings.has(parentKey)) {
      return this.#singleFlight(this.#pendingLookups, key, () => this.#fetchNode(path, key));
    }
    const parentNode = await this.lookup(parent);
    if (parentNode.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${parent} is not a folder`);
    const listing = await this.listing(parent);
    return this.#found(listing.children.get(keyOf(name)) ?? null, path);
  }

  /**
   * Returns the listing of the folder at a mount path, following `has_more` until complete.
   * @throws FsError ENOTDIR or ENOENT, and client errors.
   */
  async listing(path: string): Promise<Listing> {
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
    this.#nodes.clear();
    this.#listings.clear();
    this.#uncachedListings.clear();
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
    const { client, rootPath } = this.#options;
    const metadata = await client.rpc<Metadata>('files/get_metadata', {
      path: toDropboxPath(rootPath, path),
    });
    const node = this.#toNode(metadata);
    if (!node) throw new FsError(Errno.ENOENT, `${path} does not exist`);
    this.#nodes.set(key, node);
    return node;
  }

  async #fetchListing(path: string, key: string): Promise<Listing> {
    const { client, rootPath } = this.#options;
    let page = await client.rpc<ListFolderResult>('files/list_folder', {
      path: toDropboxPath(rootPath, path),
      limit: LIST_PAGE_LIMIT,
    });
    const children = new Map<string, Node>();
    for (;;) {
      for (const entry of page.entries) {
        const node = this.#toNode(entry);
        const childKey = keyOf(entry.name);
        if (node && !children.has(childKey)) children.set(childKey, node);
      }
      if (!page.has_more) break;
      page = await client.rpc<ListFolderResult>('files/list_folder/continue', {
        cursor: page.cursor,
      });
    }
    const listing: Listing = { children };
    // lru-cache refuses an item larger than maxSize; such a folder answers lookups with
    // get_metadata rather than being listed again for every name.
    if (children.size + 1 > this.#options.maxEntries) this.#uncachedListings.add(key);
    else this.#listings.set(key, listing);
    return listing;
  }

  #toNode(metadata: Metadata): Node | undefined {
    const pathDisplay = metadata.path_display ?? metadata.name;
    if (metadata['.tag'] === 'folder') {
      const { dirMtimeMs } = this.#options;
      return { kind: 'dir', name: metadata.name, pathDisplay, id: metadata.id, size: 0, mtimeMs: dirMtimeMs };
    }
    if (metadata['.tag'] !== 'file') return undefined;
    return {
      kind: 'file',
      name: metadata.name,
      pathDisplay,
      id: metadata.id,
      rev: metadata.rev,
      size: metadata.size,
      // fuse-native packs times as unsigned milliseconds, so a date before 1970 would wrap
      // into the far future; it shows as the epoch instead.
      mtimeMs: Math.max(0, Date.parse(metadata.client_modified) || 0),
      contentHash: metadata.content_hash,
    };
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
