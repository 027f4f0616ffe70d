/**
 * The change journal: one append-only list of changes with sequence numbers. Every create,
 * write, move and delete, made through the API or seen in the data folder, appends entries.
 * A move appends a deletion of the old path and additions of the new path and everything
 * below it. Deleting a folder appends only the folder's deletion, because Dropbox clients
 * apply a deletion to the path and its children.
 *
 * A cursor stores a journal position (the last sequence number it has seen) and the epoch it
 * was made in. The epoch is a random id per emulator start plus a counter that
 * `invalidate()` bumps, so cursors from an earlier run or before an invalidation no longer
 * match and get 409 `reset`. The journal lives in memory only: after a restart every cursor
 * is reset, which Dropbox documents as a possible response at any time.
 */

import { randomBytes } from 'node:crypto';
import { isWithin, parentOf } from './catalog.js';
import type { TaggedMetadata } from './metadata.js';

export interface DeletedMetadata {
  '.tag': 'deleted';
  name: string;
  path_lower: string;
  path_display: string;
}

export type ChangeMetadata = TaggedMetadata | DeletedMetadata;

export interface JournalEntry {
  seq: number;
  pathLower: string;
  metadata: ChangeMetadata;
}

/** The folder and depth of changes a cursor follows. */
export interface ChangeScope {
  pathLower: string;
  recursive: boolean;
}

// Bounds memory in long runs. A cursor older than the oldest kept entry gets `reset`.
const MAX_ENTRIES = 200_000;

export class Journal {
  private readonly runId = randomBytes(6).toString('base64url');
  private generation = 0;
  private readonly entries: JournalEntry[] = [];
  private firstKeptSeq = 1;
  private lastSeq = 0;
  private readonly listeners = new Set<(entry: JournalEntry) => void>();

  get epoch(): string {
    return `${this.runId}.${this.generation}`;
  }

  get position(): number {
    return this.lastSeq;
  }

  /** Invalidates every existing cursor, so that continue and longpoll return `reset`. */
  invalidate(): void {
    this.generation++;
  }

  append(pathLower: string, metadata: ChangeMetadata): void {
    this.lastSeq++;
    const entry = { seq: this.lastSeq, pathLower, metadata };
    this.entries.push(entry);
    if (this.entries.length > MAX_ENTRIES) {
      this.entries.splice(0, this.entries.length - MAX_ENTRIES);
      this.firstKeptSeq = (this.entries[0] as JournalEntry).seq;
    }
    for (const listener of this.listeners) {
      listener(entry);
    }
  }

  /** True when a cursor made at `position` in `epoch` can still be replayed. */
  isValid(epoch: string, position: number): boolean {
    return epoch === this.epoch && position >= this.firstKeptSeq - 1 && position <= this.lastSeq;
  }

  /** Returns up to `limit` entries after `position` that fall under `scope`. */
  since(position: number, scope: ChangeScope, limit: number): JournalEntry[] {
    const result: JournalEntry[] = [];
    for (let index = this.indexAfter(position); index < this.entries.length; index++) {
      const entry = this.entries[index] as JournalEntry;
      if (isInScope(entry.pathLower, scope)) {
        result.push(entry);
        if (result.length === limit) {
          break;
        }
      }
    }
    return result;
  }

  /** Calls `listener` for each later entry; returns the function that stops the calls. */
  subscribe(listener: (entry: JournalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private indexAfter(position: number): number {
    return Math.max(0, position + 1 - this.firstKeptSeq);
  }
}

/**
 * True when a change at `pathLower` belongs to a listing of `scope`: a child of the folder,
 * or with `recursive` anything below it. A recursive listing also reports the folder itself.
 */
export function isInScope(pathLower: string, scope: ChangeScope): boolean {
  if (scope.recursive) {
    return isWithin(pathLower, scope.pathLower);
  }
  return pathLower !== scope.pathLower && parentOf(pathLower) === scope.pathLower;
}
