/**
 * Whole-tree prefetch: one recursive `list_folder` of the mount root, paged with `continue`,
 * turned into the listing of every folder below it. A tree of 21,000 entries costs about 11
 * calls at 2,000 entries a page, where listing folder by folder costs one call per folder.
 */
import type { DropboxClient } from '../dropbox/client.js';
import type { ListFolderResult } from '../dropbox/types.js';
import type { Listing } from './metadata-cache.js';
import { toNode, type NonDownloadablePolicy } from './nodes.js';
import { keyOf, mountKeyOf, splitPath } from './paths.js';

export interface PrefetchOptions {
  client: DropboxClient;
  /** Dropbox path of the mount root: `""` for the whole account or `/Some/Folder`. */
  rootPath: string;
  /** Maximum entries. Past it the prefetch stops and returns `overLimit` with no listings. */
  maxEntries: number;
  dirMtimeMs: number;
  nonDownloadable?: NonDownloadablePolicy;
}

export interface PrefetchedTree {
  /** Listings by the cache key of their folder's mount path, the root as `/`. */
  listings: Map<string, Listing>;
  /** The final cursor of the listing, from which `list_folder/continue` returns later changes. */
  cursor: string;
  entryCount: number;
}

export type PrefetchOutcome = PrefetchedTree | { overLimit: true; entryCount: number };

// list_folder's `limit` is at most 2,000 and only approximate.
const PAGE_LIMIT = 2000;

/**
 * Lists the whole tree under the root. Returns `overLimit` as soon as more than `maxEntries`
 * entries arrive, because a partial recursive listing cannot tell which folders are complete.
 * @throws client errors, unchanged.
 */
export async function prefetchTree(options: PrefetchOptions): Promise<PrefetchOutcome> {
  const { client, rootPath, maxEntries, dirMtimeMs, nonDownloadable } = options;
  const rootKey = keyOf(rootPath);
  const listings = new Map<string, Listing>([['/', { children: new Map() }]]);
  let entryCount = 0;
  let page = await client.rpc<ListFolderResult>('files/list_folder', {
    path: rootPath,
    recursive: true,
    limit: PAGE_LIMIT,
  });
  for (;;) {
    entryCount += page.entries.length;
    if (entryCount > maxEntries) return { overLimit: true, entryCount };
    for (const entry of page.entries) {
      const node = toNode(entry, dirMtimeMs, nonDownloadable);
      // Entries are placed by `path_lower`, never by `path_display`, whose parent folders may be
      // spelled in another case than the folders' own entries.
      const key = mountKeyOf(rootKey, entry.path_lower ?? entry.path_display ?? '');
      if (node === undefined || key === undefined || key === '/') continue;
      const listing = listingAt(listings, splitPath(key).parent);
      const childKey = keyOf(node.name);
      if (!listing.children.has(childKey)) listing.children.set(childKey, node);
      if (node.kind === 'dir') listingAt(listings, key);
    }
    if (!page.has_more) break;
    page = await client.rpc<ListFolderResult>('files/list_folder/continue', { cursor: page.cursor });
  }
  return { listings, cursor: page.cursor, entryCount };
}

function listingAt(listings: Map<string, Listing>, key: string): Listing {
  let listing = listings.get(key);
  if (listing === undefined) {
    listing = { children: new Map() };
    listings.set(key, listing);
  }
  return listing;
}
