/** Conversion of Dropbox metadata into cache nodes, shared by folder listings and prefetch. */
import type { Metadata } from '../dropbox/types.js';
import type { Node } from './metadata-cache.js';

/**
 * Policy for files that `files/download` cannot read (`is_downloadable: false`, such as Paper
 * docs). `export` lists them under their export's name, and `hide` leaves them out.
 */
export type NonDownloadablePolicy = 'export' | 'hide';

// File name extensions of the export formats that Dropbox documents for `export_as`. Another
// format gets `.` plus the format's name.
const EXPORT_EXTENSIONS: Record<string, string> = { markdown: '.md', html: '.html', plain_text: '.txt' };

// The format used when `export_info` lacks `export_as`, because Paper docs export to Markdown by default.
const DEFAULT_EXPORT_FORMAT = 'markdown';

/** Returns the extension appended to the name of a file exported in `format`. */
export function exportExtension(format: string): string {
  return EXPORT_EXTENSIONS[format] ?? `.${format.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Returns every extension `exportExtension` returns for the documented formats. */
export function knownExportExtensions(): string[] {
  return Object.values(EXPORT_EXTENSIONS);
}

/**
 * Returns the node for a file or folder entry, or undefined for a deleted entry and for a
 * non-downloadable file under the `hide` policy. Folders get `dirMtimeMs`, because Dropbox keeps
 * no folder times. A non-downloadable file is named after its export (`Notes.paper` becomes
 * `Notes.paper.md`) and has size 0 until the filesystem exports it.
 */
export function toNode(
  metadata: Metadata,
  dirMtimeMs: number,
  nonDownloadable: NonDownloadablePolicy = 'export',
): Node | undefined {
  const pathDisplay = metadata.path_display ?? metadata.name;
  if (metadata['.tag'] === 'folder') {
    return { kind: 'dir', name: metadata.name, pathDisplay, id: metadata.id, size: 0, mtimeMs: dirMtimeMs };
  }
  if (metadata['.tag'] !== 'file') return undefined;
  const node: Node = {
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
  if (metadata.is_downloadable !== false) return node;
  if (nonDownloadable === 'hide') return undefined;
  const format = metadata.export_info?.export_as ?? DEFAULT_EXPORT_FORMAT;
  return {
    ...node,
    name: metadata.name + exportExtension(format),
    size: 0,
    contentHash: undefined,
    exportFormat: format,
  };
}
