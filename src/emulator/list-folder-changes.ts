/**
 * Changes since a cursor: list_folder/continue on a final cursor, and list_folder/longpoll.
 * Both replay the change journal (journal.ts) after the cursor's position, limited to the
 * cursor's folder (its children, or everything below with `recursive`). Deletions come back
 * as DeletedMetadata whether or not the cursor asked for `include_deleted`, as Dropbox's
 * continue does. A cursor from another epoch (an earlier run, or before
 * `invalidateCursors()`) gets 409 `reset`.
 */

import type { EmulatorContext } from './context.js';
import { pathLookupError, routeError } from './errors.js';
import type { ChangeScope } from './journal.js';
import type { ListFolderResult } from './list-folder.js';
import { encodeCursor, type ListingCursor } from './list-folder-cursor.js';

/** Returns the changes after a final cursor's position, one page of up to `limit`. */
export async function replayChanges(context: EmulatorContext, cursor: ListingCursor): Promise<ListFolderResult> {
  const { account, watcher } = context.state;
  checkEpoch(context, cursor);
  await watcher.flush();
  const { scope, gone } = scopeOf(context, cursor);
  const changes = account.journal.since(cursor.position, scope, cursor.limit);
  if (gone && changes.length === 0) {
    throw pathLookupError('not_found');
  }
  const full = changes.length === cursor.limit;
  const position = full ? (changes[changes.length - 1]?.seq ?? cursor.position) : account.journal.position;
  const hasMore = full && account.journal.since(position, scope, 1).length > 0;
  const completed = await Promise.all(changes.map((change) => account.completeChange(change.metadata)));
  return {
    entries: completed.filter((metadata) => metadata !== null),
    cursor: encodeCursor({ ...cursor, position }),
    has_more: hasMore,
  };
}

/** Throws 409 `reset` for a cursor the journal can no longer replay. */
export function checkEpoch(context: EmulatorContext, cursor: ListingCursor): void {
  if (!context.state.account.journal.isValid(cursor.epoch, cursor.position)) {
    throw routeError({ '.tag': 'reset' });
  }
}

/**
 * Returns the journal scope of a cursor and whether its folder is gone. An `id:` cursor
 * follows its folder to its current path. When the listed folder no longer exists and no
 * change in scope remains (a recursive cursor still gets the folder's deletion), continue
 * returns `path/not_found`.
 */
export function scopeOf(context: EmulatorContext, cursor: ListingCursor): { scope: ChangeScope; gone: boolean } {
  const { catalog } = context.state.account;
  let pathLower = cursor.pathLower;
  if (cursor.id !== undefined) {
    pathLower = catalog.pathOfId(cursor.id) ?? '\0gone';
  }
  const gone = pathLower !== '' && catalog.get(pathLower)?.kind !== 'folder';
  return { scope: { pathLower: gone ? cursor.pathLower : pathLower, recursive: cursor.recursive }, gone };
}
