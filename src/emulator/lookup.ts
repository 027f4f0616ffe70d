/** Path-argument lookups and metadata descriptions shared by the read routes. */

import type { Entry } from './data-folder.js';
import type { EmulatorContext } from './context.js';
import {
  fileMetadata,
  folderMetadata,
  revOf,
  taggedFile,
  taggedFolder,
  type FileMetadata,
  type TaggedMetadata,
} from './metadata.js';
import type { PathRef } from './paths.js';

/** Finds the entry `ref` names; null when nothing is there. */
export async function lookupEntry(context: EmulatorContext, ref: PathRef): Promise<Entry | null> {
  const root = await context.folder.rootEntry();
  switch (ref.kind) {
    case 'path':
      return context.folder.resolve(root, ref.components);
    case 'id': {
      const start = await context.folder.findById(ref.id);
      return start === null ? null : context.folder.resolve(start, ref.components);
    }
    case 'rev':
      return findByRev(context, root, ref.rev);
  }
}

/**
 * Finds the file whose current rev is `rev` by walking the tree.
 * NOTE: only current revisions exist here; Dropbox also serves older ones.
 */
async function findByRev(context: EmulatorContext, root: Entry, rev: string): Promise<Entry | null> {
  for await (const entry of context.folder.walk(root)) {
    if (entry.kind === 'file' && revOf(entry.stat) === rev) {
      return entry;
    }
  }
  return null;
}

/**
 * Returns the FileMetadata of a file entry, hashing it when its version is not cached.
 * Returns null when the file disappeared meanwhile.
 */
export async function describeFile(context: EmulatorContext, entry: Entry): Promise<FileMetadata | null> {
  try {
    const version = await context.hashes.hashOf(entry.diskPath, entry.stat);
    return fileMetadata(entry, version.stat, version.contentHash);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
      return null;
    }
    throw error;
  }
}

/** Returns the tagged metadata of an entry; null when a file disappeared meanwhile. */
export async function describeEntry(context: EmulatorContext, entry: Entry): Promise<TaggedMetadata | null> {
  if (entry.kind === 'folder') {
    return taggedFolder(folderMetadata(entry));
  }
  const metadata = await describeFile(context, entry);
  return metadata === null ? null : taggedFile(metadata);
}
