/** files/get_metadata. */

import type { EmulatorContext } from './context.js';
import { badInput, pathLookupError } from './errors.js';
import { describeEntry, lookupEntry } from './lookup.js';
import type { TaggedMetadata } from './metadata.js';
import { parsePath } from './paths.js';
import type { RpcRoute } from './route-table.js';

const GET_METADATA = 'files/get_metadata';

export const getMetadataRoute: RpcRoute = {
  name: GET_METADATA,
  style: 'rpc',
  auth: 'user',
  // The include_* flags are accepted for compatibility. They do not change the result,
  // because no entry here has media info, sharing, properties or a deleted state.
  arg: {
    path: { type: 'string', required: true },
    include_media_info: { type: 'boolean' },
    include_deleted: { type: 'boolean' },
    include_has_explicit_shared_members: { type: 'boolean' },
    include_property_groups: { type: 'struct' },
  },
  async handle(context: EmulatorContext, arg: { path: string }): Promise<TaggedMetadata> {
    const ref = parsePath(arg.path, {
      route: GET_METADATA,
      pattern: 'readPath',
      rootNamespaceId: context.account.rootNamespaceId,
    });
    const entry = await lookupEntry(context, ref);
    if (entry === null) {
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
