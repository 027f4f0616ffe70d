/**
 * Dropbox metadata built from catalog records (see catalog.ts), which hold the id, rev and
 * times. `.tag` appears only where the Stone type is polymorphic (list_folder entries,
 * get_metadata, the metadata of delete_v2, move_v2 and copy_v2), never on the FileMetadata
 * of upload results or the download result header.
 *
 * Files named `*.paper` stand for Paper documents, as the Dropbox API lists them: they are
 * not downloadable, and their bytes on disk are the Markdown that files/export returns.
 */

import type { CatalogRecord } from './catalog.js';

export interface FileMetadata {
  name: string;
  path_lower: string;
  path_display: string;
  id: string;
  client_modified: string;
  server_modified: string;
  rev: string;
  size: number;
  is_downloadable: boolean;
  export_info?: { export_as: string; export_options: string[] };
  content_hash: string;
}

export interface FolderMetadata {
  name: string;
  path_lower: string;
  path_display: string;
  id: string;
}

export type TaggedMetadata =
  | ({ '.tag': 'file' } & FileMetadata)
  | ({ '.tag': 'folder' } & FolderMetadata);

/** Formats a time in ns as Dropbox's `%Y-%m-%dT%H:%M:%SZ` (UTC, whole seconds). */
export function dropboxTimestamp(timeNs: bigint): string {
  const seconds = timeNs / 1_000_000_000n - (timeNs < 0n && timeNs % 1_000_000_000n !== 0n ? 1n : 0n);
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Formats of Paper documents for files/export; the first is `export_as`. */
export const PAPER_EXPORT_FORMATS = ['markdown', 'html', 'plain_text'];

/** True for a name the emulator serves as a Paper document. */
export function isPaperName(name: string): boolean {
  return name.toLowerCase().endsWith('.paper') && name.length > '.paper'.length;
}

/** FileMetadata without `.tag` for the file recorded at `pathLower`. */
export function fileMetadata(pathLower: string, record: CatalogRecord, contentHash: string): FileMetadata {
  const name = nameOf(record.pathDisplay);
  const paper = isPaperName(name);
  return {
    name,
    path_lower: pathLower,
    path_display: record.pathDisplay,
    id: record.id,
    client_modified: record.clientModified ?? '',
    server_modified: record.serverModified ?? '',
    rev: record.rev ?? '',
    size: record.size ?? 0,
    is_downloadable: !paper,
    ...(paper
      ? { export_info: { export_as: PAPER_EXPORT_FORMATS[0] as string, export_options: PAPER_EXPORT_FORMATS } }
      : {}),
    content_hash: contentHash,
  };
}

export function folderMetadata(pathLower: string, record: CatalogRecord): FolderMetadata {
  return {
    name: nameOf(record.pathDisplay),
    path_lower: pathLower,
    path_display: record.pathDisplay,
    id: record.id,
  };
}

function nameOf(pathDisplay: string): string {
  return pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1);
}

export function taggedFile(metadata: FileMetadata): TaggedMetadata {
  return { '.tag': 'file', ...metadata };
}

export function taggedFolder(metadata: FolderMetadata): TaggedMetadata {
  return { '.tag': 'folder', ...metadata };
}
