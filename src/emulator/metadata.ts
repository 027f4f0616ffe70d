/**
 * Dropbox metadata built from an entry's stat.
 * - `rev`: 16 lowercase hex digits of SHA-256 over inode, mtime in ns and size, so any write
 *   that moves mtime or size gives a new rev.
 *   NOTE: two writes of the same size within one kernel timestamp tick (a few ms on some
 *   filesystems) keep the rev.
 * - `client_modified` and `server_modified`: the mtime in whole UTC seconds.
 * - `.tag` appears only where the Stone type is polymorphic (list_folder entries,
 *   get_metadata), never on the FileMetadata of the download result header.
 */

import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { entryIdOf, type Entry } from './data-folder.js';

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

export function revOf(stat: BigIntStats): string {
  const digest = createHash('sha256').update(`${stat.ino}:${stat.mtimeNs}:${stat.size}`).digest();
  return digest.subarray(0, 8).toString('hex');
}

/** Formats a time in ns as Dropbox's `%Y-%m-%dT%H:%M:%SZ` (UTC, whole seconds). */
export function dropboxTimestamp(timeNs: bigint): string {
  const seconds = timeNs / 1_000_000_000n - (timeNs < 0n && timeNs % 1_000_000_000n !== 0n ? 1n : 0n);
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** FileMetadata without `.tag`; `stat` must be the version that `contentHash` belongs to. */
export function fileMetadata(entry: Entry, stat: BigIntStats, contentHash: string): FileMetadata {
  const modified = dropboxTimestamp(stat.mtimeNs);
  return {
    name: entry.name,
    path_lower: entry.pathLower,
    path_display: entry.pathDisplay,
    id: entryIdOf(stat),
    client_modified: modified,
    server_modified: modified,
    rev: revOf(stat),
    size: Number(stat.size),
    is_downloadable: true,
    content_hash: contentHash,
  };
}

export function folderMetadata(entry: Entry): FolderMetadata {
  return {
    name: entry.name,
    path_lower: entry.pathLower,
    path_display: entry.pathDisplay,
    id: entryIdOf(entry.stat),
  };
}

export function taggedFile(metadata: FileMetadata): TaggedMetadata {
  return { '.tag': 'file', ...metadata };
}

export function taggedFolder(metadata: FolderMetadata): TaggedMetadata {
  return { '.tag': 'folder', ...metadata };
}
