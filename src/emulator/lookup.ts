/** Path-argument lookups and metadata descriptions shared by the routes. */

import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import type { FileMetadata, TaggedMetadata } from './metadata.js';
import type { PathRef } from './paths.js';
import type { RevisionRecord } from './revisions.js';

/**
 * Finds the entry `ref` names; null when nothing is there. A `rev:` path finds the file only
 * while that rev is current; `lookupRevision` finds earlier ones.
 */
export async function lookupEntry(context: EmulatorContext, ref: PathRef): Promise<Entry | null> {
  const root = await context.folder.rootEntry();
  switch (ref.kind) {
    case 'path':
      return context.folder.resolve(root, ref.components);
    case 'id': {
      const start = await findById(context, root, ref.id);
      return start === null ? null : context.folder.resolve(start, ref.components);
    }
    case 'rev': {
      const pathLower = context.state.account.catalog.findByRev(ref.rev);
      return pathLower === undefined ? null : resolveRecorded(context, root, pathLower);
    }
  }
}

/** Returns an earlier revision kept in the revision store, or undefined. */
export function lookupRevision(context: EmulatorContext, rev: string): RevisionRecord | undefined {
  return context.state.account.revisions.get(rev);
}

async function findById(context: EmulatorContext, root: Entry, id: string): Promise<Entry | null> {
  const { catalog } = context.state.account;
  let pathLower = catalog.pathOfId(id);
  if (pathLower === undefined) {
    // The entry may have been renamed on disk moments ago; the watcher's rescan finds it.
    await context.state.watcher.flush();
    pathLower = catalog.pathOfId(id);
  }
  return pathLower === undefined ? null : resolveRecorded(context, root, pathLower);
}

async function resolveRecorded(context: EmulatorContext, root: Entry, pathLower: string): Promise<Entry | null> {
  const record = context.state.account.catalog.get(pathLower);
  if (record === undefined) {
    return null;
  }
  const entry = await context.folder.resolve(root, record.pathDisplay.split('/').slice(1));
  if (entry === null) {
    return null;
  }
  // The path may now hold another entry; reconciling detects that and journals the change.
  const current = await context.state.account.recordOf(entry);
  return current.id === record.id ? entry : null;
}

/** Returns the FileMetadata of a file entry; null when the file disappeared meanwhile. */
export function describeFile(context: EmulatorContext, entry: Entry): Promise<FileMetadata | null> {
  return context.state.account.describeFile(entry);
}

/** Returns the tagged metadata of an entry; null when a file disappeared meanwhile. */
export function describeEntry(context: EmulatorContext, entry: Entry): Promise<TaggedMetadata | null> {
  return context.state.account.describe(entry);
}
