/** Conversion of Dropbox metadata into cache nodes, shared by folder listings and prefetch. */
import type { Metadata } from '../dropbox/types.js';
import type { Node } from './metadata-cache.js';

/**
 * Returns the node for a file or folder entry, or undefined for a deleted entry. Folders get
 * `dirMtimeMs`, because Dropbox keeps no folder times.
 */
export function toNode(metadata: Metadata, dirMtimeMs: number): Node | undefined {
  const pathDisplay = metadata.path_display ?? metadata.name;
  if (metadata['.tag'] === 'folder') {
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
