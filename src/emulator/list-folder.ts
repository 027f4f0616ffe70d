/** files/list_folder, files/list_folder/continue and files/list_folder/get_latest_cursor. */

import { lstat } from 'node:fs/promises';
import type { StructSpec } from './args.js';
import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import { badInput, pathLookupError, routeError } from './errors.js';
import { deletedMetadata } from './account-state.js';
import type { ChangeMetadata } from './journal.js';
import { replayChanges } from './list-folder-changes.js';
import { decodeCursor, encodeCursor, type ListingCursor, type ListingItem } from './list-folder-cursor.js';
import { describeEntry, lookupEntry } from './lookup.js';
import { parsePath } from './paths.js';
import type { RpcRoute } from './route-table.js';

// Dropbox documents the default page as "about 2,000 entries, not strict".
const DEFAULT_PAGE_ENTRIES = 2000;

const LIST_FOLDER = 'files/list_folder';
const CONTINUE = 'files/list_folder/continue';

interface ListFolderArg {
  path: string;
  recursive?: boolean;
  include_deleted?: boolean;
  limit?: number;
}

export interface ListFolderResult {
  entries: ChangeMetadata[];
  cursor: string;
  has_more: boolean;
}

// Every ListFolderArg field is accepted, so real clients' arguments validate. Only path,
// recursive, include_deleted and limit change the result, because the emulator has no media
// info, sharing or properties.
const LIST_FOLDER_ARG: StructSpec = {
  path: { type: 'string', required: true },
  recursive: { type: 'boolean' },
  include_media_info: { type: 'boolean' },
  include_deleted: { type: 'boolean' },
  include_has_explicit_shared_members: { type: 'boolean' },
  include_mounted_folders: { type: 'boolean' },
  limit: { type: 'uint32', min: 1, max: 2000 },
  shared_link: { type: 'struct' },
  include_property_groups: { type: 'struct' },
  include_non_downloadable_files: { type: 'boolean' },
  include_restorable_info: { type: 'boolean' },
};

export const listFolderRoute: RpcRoute = {
  name: LIST_FOLDER,
  style: 'rpc',
  auth: 'user',
  arg: LIST_FOLDER_ARG,
  async handle(context: EmulatorContext, arg: ListFolderArg): Promise<ListFolderResult> {
    const { folder, cursor } = await startCursor(context, LIST_FOLDER, arg);
    const entries = await collectListing(context, folder, cursor);
    return pageOf(context, cursor, entries, 0);
  },
};

export const getLatestCursorRoute: RpcRoute = {
  name: 'files/list_folder/get_latest_cursor',
  style: 'rpc',
  auth: 'user',
  arg: LIST_FOLDER_ARG,
  async handle(context: EmulatorContext, arg: ListFolderArg): Promise<{ cursor: string }> {
    const { cursor } = await startCursor(context, 'files/list_folder/get_latest_cursor', arg);
    return { cursor: encodeCursor(cursor) };
  },
};

export const listFolderContinueRoute: RpcRoute = {
  name: CONTINUE,
  style: 'rpc',
  auth: 'user',
  arg: { cursor: { type: 'string', required: true } },
  async handle(context: EmulatorContext, arg: { cursor: string }): Promise<ListFolderResult> {
    // A cursor this emulator never wrote is a client bug, so it gets a 400 like other bad
    // input. A well-formed cursor whose snapshot or epoch is gone gets 409 `reset`, which
    // clients handle by listing again.
    const cursor = decodeCursor(arg.cursor);
    if (cursor === null) {
      throw badInput(CONTINUE, `Invalid "cursor" parameter: ${JSON.stringify(arg.cursor)}`);
    }
    if (cursor.snapshot === undefined) {
      return replayChanges(context, cursor);
    }
    const entries = context.snapshots.get(cursor.snapshot);
    if (entries === undefined || cursor.epoch !== context.state.account.journal.epoch) {
      throw routeError({ '.tag': 'reset' });
    }
    return pageOf(context, cursor, entries, cursor.offset ?? 0);
  },
};

/**
 * Resolves the folder a ListFolderArg names and builds its cursor at the current journal
 * position, after journaling the changes the watcher has reported so far.
 */
async function startCursor(
  context: EmulatorContext,
  route: string,
  arg: ListFolderArg,
): Promise<{ folder: Entry; cursor: ListingCursor }> {
  const ref = parsePath(arg.path, { route, pattern: 'pathROrId', rootNamespaceId: context.account.rootNamespaceId });
  const folder = await lookupEntry(context, ref);
  if (folder === null) {
    throw pathLookupError('not_found');
  }
  if (folder.kind !== 'folder') {
    throw pathLookupError('not_folder');
  }
  const { account, watcher } = context.state;
  await watcher.flush();
  const id = folder.pathLower === '' ? undefined : (await account.recordOf(folder)).id;
  const cursor: ListingCursor = {
    v: 2,
    path: arg.path,
    pathLower: folder.pathLower,
    ...(ref.kind === 'id' && id !== undefined ? { id } : {}),
    epoch: account.journal.epoch,
    position: account.journal.position,
    recursive: arg.recursive ?? false,
    includeDeleted: arg.include_deleted ?? false,
    limit: arg.limit ?? DEFAULT_PAGE_ENTRIES,
  };
  return { folder, cursor };
}

/**
 * Lists the folder: its children, or with `recursive` the folder and all below, then with
 * `include_deleted` the remembered deletions there.
 */
async function collectListing(context: EmulatorContext, folder: Entry, cursor: ListingCursor): Promise<ListingItem[]> {
  const items: ListingItem[] = [];
  if (!cursor.recursive) {
    items.push(...(await context.folder.listChildren(folder)));
  } else {
    // A recursive listing of a folder other than the root starts with the folder itself.
    if (folder.pathLower !== '') {
      items.push(folder);
    }
    for await (const entry of context.folder.walk(folder)) {
      items.push(entry);
    }
  }
  if (cursor.includeDeleted) {
    const { catalog } = context.state.account;
    for (const [pathLower, deleted] of catalog.deletedBelow(folder.pathLower, cursor.recursive)) {
      items.push(deletedMetadata(pathLower, deleted.pathDisplay));
    }
  }
  return items;
}

/**
 * Describes one page. Content hashes are computed here, per page, so a large listing never
 * hashes entries before they are returned. Files deleted since the snapshot are left out.
 */
async function pageOf(
  context: EmulatorContext,
  cursor: ListingCursor,
  items: ListingItem[],
  offset: number,
): Promise<ListFolderResult> {
  const end = offset + cursor.limit;
  const slice = items.slice(offset, end);
  const described = await Promise.all(slice.map((item) =>
    '.tag' in item ? item : describeEntry(context, item)));
  if (offset > 0) {
    // Later pages come from the snapshot; an entry removed since then is left out.
    const exists = await Promise.all(slice.map((item) =>
      '.tag' in item ? true : lstat(item.diskPath).then(() => true, () => false)));
    exists.forEach((present, index) => {
      if (!present) {
        described[index] = null;
      }
    });
  }
  const page = described.filter((metadata): metadata is ChangeMetadata => metadata !== null);
  if (end >= items.length) {
    const { snapshot: _snapshot, offset: _offset, ...complete } = cursor;
    return { entries: page, cursor: encodeCursor(complete), has_more: false };
  }
  const snapshot = cursor.snapshot ?? context.snapshots.save(items);
  return { entries: page, cursor: encodeCursor({ ...cursor, snapshot, offset: end }), has_more: true };
}
