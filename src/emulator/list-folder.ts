/** files/list_folder and files/list_folder/continue. */

import type { StructSpec } from './args.js';
import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import { badInput, pathLookupError, routeError } from './errors.js';
import { decodeCursor, encodeCursor, type ListingCursor } from './list-folder-cursor.js';
import { describeEntry, lookupEntry } from './lookup.js';
import type { TaggedMetadata } from './metadata.js';
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

interface ListFolderResult {
  entries: TaggedMetadata[];
  cursor: string;
  has_more: boolean;
}

// Every ListFolderArg field is accepted, so real clients' arguments validate. Only path,
// recursive and limit change the result, because the emulator has no deleted entries, media
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
    const cursor: ListingCursor = {
      v: 1,
      path: arg.path,
      recursive: arg.recursive ?? false,
      includeDeleted: arg.include_deleted ?? false,
      limit: arg.limit ?? DEFAULT_PAGE_ENTRIES,
    };
    const entries = await collectListing(context, cursor);
    return pageOf(context, cursor, entries, 0);
  },
};

export const listFolderContinueRoute: RpcRoute = {
  name: CONTINUE,
  style: 'rpc',
  auth: 'user',
  arg: { cursor: { type: 'string', required: true } },
  async handle(context: EmulatorContext, arg: { cursor: string }): Promise<ListFolderResult> {
    // A cursor this emulator never wrote is a client bug, so it gets a 400 like other bad
    // input. A well-formed cursor whose snapshot is gone gets 409 `reset`, which clients
    // handle by listing again.
    const cursor = decodeCursor(arg.cursor);
    if (cursor === null) {
      throw badInput(CONTINUE, `Invalid "cursor" parameter: ${JSON.stringify(arg.cursor)}`);
    }
    if (cursor.snapshot === undefined) {
      return { entries: [], cursor: arg.cursor, has_more: false };
    }
    const entries = context.snapshots.get(cursor.snapshot);
    if (entries === undefined) {
      throw routeError({ '.tag': 'reset' });
    }
    return pageOf(context, cursor, entries, cursor.offset ?? 0);
  },
};

/** Lists the folder the cursor names: its children, or with `recursive` the folder and all below. */
async function collectListing(context: EmulatorContext, cursor: ListingCursor): Promise<Entry[]> {
  const ref = parsePath(cursor.path, {
    route: LIST_FOLDER,
    pattern: 'pathROrId',
    rootNamespaceId: context.account.rootNamespaceId,
  });
  const folder = await lookupEntry(context, ref);
  if (folder === null) {
    throw pathLookupError('not_found');
  }
  if (folder.kind !== 'folder') {
    throw pathLookupError('not_folder');
  }
  if (!cursor.recursive) {
    return context.folder.listChildren(folder);
  }
  // A recursive listing of a folder other than the root starts with the folder itself.
  const entries = folder.pathLower === '' ? [] : [folder];
  for await (const entry of context.folder.walk(folder)) {
    entries.push(entry);
  }
  return entries;
}

/**
 * Describes one page. Content hashes are computed here, per page, so a large listing never
 * hashes entries before they are returned. Files deleted since the snapshot are left out.
 */
async function pageOf(
  context: EmulatorContext,
  cursor: ListingCursor,
  entries: Entry[],
  offset: number,
): Promise<ListFolderResult> {
  const end = offset + cursor.limit;
  const slice = entries.slice(offset, end);
  const described = await Promise.all(slice.map((entry) => describeEntry(context, entry)));
  const page = described.filter((metadata): metadata is TaggedMetadata => metadata !== null);
  if (end >= entries.length) {
    const { snapshot: _snapshot, offset: _offset, ...complete } = cursor;
    return { entries: page, cursor: encodeCursor(complete), has_more: false };
  }
  const snapshot = cursor.snapshot ?? context.snapshots.save(entries);
  return { entries: page, cursor: encodeCursor({ ...cursor, snapshot, offset: end }), has_more: true };
}
