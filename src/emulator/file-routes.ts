/**
 * files/create_folder_v2, files/delete_v2, files/move_v2 and files/copy_v2, with their error
 * unions: CreateFolderError nests the WriteError under `path`; DeleteError uses
 * `path_lookup` and `path_write`; RelocationError uses `from_lookup`, `to` and
 * `cant_move_folder_into_itself`. Results wrap the metadata in `{metadata}`; only
 * create_folder_v2's FolderMetadata has no `.tag`, because its field is not polymorphic.
 */

import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import { badInput, routeError, type ErrorUnion } from './errors.js';
import { describeEntry, lookupEntry } from './lookup.js';
import type { FolderMetadata, TaggedMetadata } from './metadata.js';
import { parsePath } from './paths.js';
import { relocateLocked } from './relocate-ops.js';
import type { RpcRoute } from './route-table.js';
import { writeComponentsOf } from './commit-info.js';
import { conflict, createFolderLocked, deleteEntryLocked } from './write-ops.js';

const CREATE_FOLDER = 'files/create_folder_v2';
const DELETE = 'files/delete_v2';

export const createFolderRoute: RpcRoute = {
  name: CREATE_FOLDER,
  style: 'rpc',
  auth: 'user',
  arg: { path: { type: 'string', required: true }, autorename: { type: 'boolean' } },
  async handle(context: EmulatorContext, arg: { path: string; autorename?: boolean }) {
    const fail = (writeError: ErrorUnion) => routeError({ '.tag': 'path', path: writeError });
    const ref = parsePath(arg.path, {
      route: CREATE_FOLDER,
      pattern: 'writePath',
      rootNamespaceId: context.account.rootNamespaceId,
      malformed: () => fail({ '.tag': 'malformed_path' }),
    });
    if (ref.kind !== 'path' || ref.components.length === 0) {
      throw fail({ '.tag': 'malformed_path' });
    }
    const { account } = context.state;
    const metadata: FolderMetadata = await account.exclusive(() =>
      createFolderLocked(account, ref.kind === 'path' ? ref.components : [], arg.autorename ?? false, fail));
    return { metadata };
  },
};

export const deleteRoute: RpcRoute = {
  name: DELETE,
  style: 'rpc',
  auth: 'user',
  arg: { path: { type: 'string', required: true }, parent_rev: { type: 'string' } },
  async handle(context: EmulatorContext, arg: { path: string; parent_rev?: string }) {
    if (arg.parent_rev !== undefined && !/^[0-9a-f]{9,}$/.test(arg.parent_rev)) {
      // A rev is at least 9 lowercase hex digits, as FileMetadata.rev.
      throw badInput(DELETE, `request body: parent_rev: '${arg.parent_rev}' did not match pattern '[0-9a-f]{9,}'`);
    }
    const lookupFailed = (error: ErrorUnion) => routeError({ '.tag': 'path_lookup', path_lookup: error });
    const entry = await findSource(context, DELETE, arg.path, 'path', lookupFailed);
    const metadata = await describeOrFail(context, entry, lookupFailed);
    const { account } = context.state;
    if (account.touchesReadOnly(entry.pathLower)) {
      throw routeError({ '.tag': 'path_write', path_write: { '.tag': 'no_write_permission' } });
    }
    if (arg.parent_rev !== undefined && (metadata['.tag'] !== 'file' || metadata.rev !== arg.parent_rev)) {
      // NOTE: Dropbox documents no error for a stale parent_rev or for parent_rev on a folder
      // (which it does not allow). The conflict WriteError is the closest fit for both.
      throw routeError({ '.tag': 'path_write', path_write: conflict(entry.kind) });
    }
    await account.exclusive(() => deleteEntryLocked(account, entry));
    return { metadata };
  },
};

interface RelocationArg {
  from_path: string;
  to_path: string;
  autorename?: boolean;
}

const RELOCATION_ARG = {
  from_path: { type: 'string', required: true },
  to_path: { type: 'string', required: true },
  allow_shared_folder: { type: 'boolean' },
  autorename: { type: 'boolean' },
  allow_ownership_transfer: { type: 'boolean' },
} as const;

function relocationRoute(name: string, copy: boolean): RpcRoute {
  return {
    name,
    style: 'rpc',
    auth: 'user',
    arg: RELOCATION_ARG,
    async handle(context: EmulatorContext, arg: RelocationArg): Promise<{ metadata: TaggedMetadata }> {
      const fromFailed = (error: ErrorUnion) => routeError({ '.tag': 'from_lookup', from_lookup: error });
      const from = await findSource(context, name, arg.from_path, 'from_path', fromFailed);
      if (!copy && context.state.account.touchesReadOnly(from.pathLower)) {
        throw routeError({ '.tag': 'from_write', from_write: { '.tag': 'no_write_permission' } });
      }
      const toFailed = (writeError: ErrorUnion) => routeError({ '.tag': 'to', to: writeError });
      const toComponents = await writeComponentsOf(context, name, arg.to_path, 'request body: to_path', toFailed);
      const { account } = context.state;
      const request = { from, toComponents, autorename: arg.autorename ?? false, copy };
      const metadata = await account.exclusive(() =>
        relocateLocked(account, context.quotaBytes, request, (error) => routeError(error)));
      return { metadata };
    },
  };
}

export const moveRoute = relocationRoute('files/move_v2', false);
export const copyRoute = relocationRoute('files/copy_v2', true);

/** Finds the existing entry a WritePathOrId names; the root cannot be deleted or moved. */
async function findSource(
  context: EmulatorContext,
  route: string,
  path: string,
  field: string,
  fail: (error: ErrorUnion) => Error,
): Promise<Entry> {
  const ref = parsePath(path, {
    route,
    pattern: 'writePathOrId',
    rootNamespaceId: context.account.rootNamespaceId,
    argument: `request body: ${field}`,
    malformed: () => fail({ '.tag': 'malformed_path' }) as never,
  });
  const entry = await lookupEntry(context, ref);
  if (entry === null) {
    throw fail({ '.tag': 'not_found' });
  }
  if (entry.pathLower === '') {
    throw fail({ '.tag': 'malformed_path' });
  }
  return entry;
}

async function describeOrFail(
  context: EmulatorContext,
  entry: Entry,
  fail: (error: ErrorUnion) => Error,
): Promise<TaggedMetadata> {
  const metadata = await describeEntry(context, entry);
  if (metadata === null) {
    throw fail({ '.tag': 'not_found' });
  }
  return metadata;
}
