/**
 * list_folder cursors and the listing snapshots they continue.
 *
 * A cursor is base64url JSON naming what it continues: the path argument, `recursive`,
 * `include_deleted`, the page size and, while pages remain, the id of a snapshot of the
 * listing plus the offset of the next page. Pages are cut from that snapshot, so when a folder
 * changes between pages, each entry of the first call still appears at most once. Only
 * files deleted meanwhile are left out.
 * Snapshots live in memory only: after a restart or eviction, `continue` returns 409
 * `reset`, which Dropbox documents as "call list_folder again".
 *
 * Every cursor also carries a change-journal position and epoch (see journal.ts): the
 * position from before the listing was read, so `continue` on the final cursor replays
 * every change since, and a change made while the pages were read is reported again
 * rather than lost. `pathLower` is the listed folder's key; for an `id:` path `id` is
 * kept too, so the scope follows the folder when it moves.
 */

import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Entry } from './data-folder.js';
import type { DeletedMetadata } from './journal.js';

/** One listed item: an entry on disk, or a remembered deletion (`include_deleted`). */
export type ListingItem = Entry | DeletedMetadata;

export interface ListingCursor {
  v: 2;
  path: string;
  pathLower: string;
  id?: string;
  epoch: string;
  position: number;
  recursive: boolean;
  includeDeleted: boolean;
  limit: number;
  /** Snapshot id; absent once the listing has been returned completely. */
  snapshot?: string;
  /** Index in the snapshot of the next page's first entry. */
  offset?: number;
}

// Bounds the entries kept across all snapshots. An entry with its stat takes roughly 0.5 KB
// (an estimate), so the limit is about 250 MB. The least recently used snapshot goes first.
const MAX_SNAPSHOT_ENTRIES = 500_000;
// A client pages through a listing within seconds; an hour covers slow test debugging.
const SNAPSHOT_TTL_MS = 60 * 60 * 1000;

export class ListingSnapshots {
  private readonly snapshots = new LRUCache<string, ListingItem[]>({
    maxSize: MAX_SNAPSHOT_ENTRIES,
    sizeCalculation: (entries) => Math.max(1, entries.length),
    ttl: SNAPSHOT_TTL_MS,
  });

  /** Stores `entries` and returns the snapshot id. */
  save(entries: ListingItem[]): string {
    const id = randomBytes(12).toString('base64url');
    this.snapshots.set(id, entries);
    return id;
  }

  get(id: string): ListingItem[] | undefined {
    return this.snapshots.get(id);
  }
}

export function encodeCursor(cursor: ListingCursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

/** Decodes a cursor; returns null when it is not one this emulator wrote. */
export function decodeCursor(text: string): ListingCursor | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  return isListingCursor(value) ? value : null;
}

function isListingCursor(value: unknown): value is ListingCursor {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const cursor = value as Partial<ListingCursor>;
  const pageOk = cursor.snapshot === undefined
    || (typeof cursor.snapshot === 'string' && Number.isInteger(cursor.offset));
  return cursor.v === 2
    && typeof cursor.path === 'string'
    && typeof cursor.pathLower === 'string'
    && typeof cursor.epoch === 'string'
    && Number.isInteger(cursor.position)
    && typeof cursor.recursive === 'boolean'
    && typeof cursor.includeDeleted === 'boolean'
    && Number.isInteger(cursor.limit)
    && pageOk;
}
