/**
 * files/get_metadata. A `rev:` path also finds earlier revisions kept in the revision store.
 * With `include_deleted`, a path whose entry was deleted gets DeletedMetadata.
 */

import type { EmulatorContext } from './context.js';
import { badInput, pathLookupError } from './errors.js';
import { deletedMetadata } from './account-state.js';
import type { ChangeMetadata } from './journal.js';
import { describeEntry, lookupEntry, lookupRevision } from './lookup.js';
import { fileMetadata, taggedFile } from './metadata.js';
import { lowerName, parsePath, type PathRef } from './paths.js';
import type { RpcRoute } from './route-table.js';

const GET_METADATA = 'files/get_metadata';

export const getMetadataRoute: RpcRoute = {
  name: GET_METADATA,
  style: 'rpc',
  auth: 'user',
  // The other include_* flags are accepted for compatibility. They do not change the
  // result, because no entry here has media info, sharing or properties.
  arg: {
    path: { type: 'string', required: true },
    include_media_info: { type: 'boolean' },
    include_deleted: { type: 'boolean' },
    include_has_explicit_shared_members: { type: 'boolean' },
    include_property_groups: { type: 'struct' },
  },
  async handle(context: EmulatorContext, arg: { path: string; include_deleted?: boolean }): Promise<ChangeMetadata> {
    const ref = parsePath(arg.path, {
      route: GET_METADATA,
      pattern: 'readPath',
      rootNamespaceId: context.account.rootNamespaceId,
    });
    const revision = ref.kind === 'rev' ? lookupRevision(context, ref.rev) : undefined;
    if (revision !== undefined && revision.record.contentHash !== undefined) {
      return taggedFile(fileMetadata(revision.pathLower, revision.record, revision.record.contentHash));
    }
    const entry = await lookupEntry(context, ref);
    if (entry === null) {
      const deleted = arg.include_deleted === true ? deletedAt(context, ref) : null;
      if (deleted !== null) {
        return deleted;
      }
      throw pathLookupError('not_found');
    }
    if (entry.pathLower === '') {
      // Reached through `ns:<root>`; Dropbox has no metadata for the root folder.
      throw badInput(GET_METADATA, 'request body: path: The root folder is unsupported.');
    }
    const metadata = await describeEntry(context, entry);
    if (metadata === null) {
      throw pathLookupError('not_found');
    }
    return metadata;
  },
};

/** Returns DeletedMetadata for a plain path whose entry the catalog remembers as deleted. */
function deletedAt(context: EmulatorContext, ref: PathRef): ChangeMetadata | null {
  if (ref.kind !== 'path') {
    return null;
  }
  const pathLower = ref.components.map(lowerName).map((name) => '/' + name).join('');
  const deleted = context.state.account.catalog.deletedAt(pathLower);
  return deleted === undefined ? null : deletedMetadata(pathLower, deleted.pathDisplay);
}
