/**
 * Changes made through the API: committing an uploaded file, creating a folder, deleting,
 * moving and copying. Each runs under the state lock, lands in the data folder with one
 * rename (from the state folder's tmp/ or trash/, outside the visible tree), updates the
 * catalog and appends to the journal before the route returns.
 *
 * Route-specific error unions differ only in where they put the WriteError, so each
 * operation takes `fail`, which wraps a WriteError into the route's HttpError.
 */

import { randomBytes } from 'node:crypto';
import { lstat, rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountState } from './account-state.js';
import { inodeOf, versionOf, type CatalogRecord } from './catalog.js';
import type { Entry } from './data-folder.js';
import type { ErrorUnion, HttpError } from './errors.js';
import { fileMetadata, folderMetadata, type FileMetadata, type FolderMetadata } from './metadata.js';
import { lowerName, writeNameProblem } from './paths.js';
import {
  autorenamed,
  createParentsLocked,
  locateTarget,
  targetPathLower,
  type WriteConflict,
  type WriteTarget,
} from './write-target.js';

export type FailWith = (writeError: ErrorUnion) => HttpError;

export type WriteMode = { kind: 'add' } | { kind: 'overwrite' } | { kind: 'update'; rev: string };

export interface CommitRequest {
  components: string[];
  mode: WriteMode;
  autorename: boolean;
  strictConflict: boolean;
  /** DropboxTimestamp; when set, the file's mtime is set to it. */
  clientModified: string | undefined;
  contentHash: string;
  size: number;
}

export function conflict(tag: WriteConflict): ErrorUnion {
  return { '.tag': 'conflict', conflict: { '.tag': tag } };
}

/** Resolves a write path, rejecting names Dropbox does not store and read-only folders. */
export async function writeTargetOf(state: AccountState, components: string[], fail: FailWith): Promise<WriteTarget> {
  const problem = writeNameProblem(components);
  if (problem !== null) {
    throw fail({ '.tag': problem });
  }
  if (state.isReadOnly('/' + components.map(lowerName).join('/'))) {
    throw fail({ '.tag': 'no_write_permission' });
  }
  const target = await locateTarget(state, components);
  if (target === 'file_ancestor') {
    throw fail(conflict('file_ancestor'));
  }
  return target;
}

/**
 * Commits the file `tempFile` to the request's path with Dropbox's WriteMode rules. A folder
 * there is a conflict. `add` conflicts with any file there, and `update` with a file whose
 * rev differs; `overwrite` never conflicts. A file with identical content is left alone (same
 * rev, same client_modified) unless strict_conflict turns a conflict into an error. With
 * strict_conflict, `update` also conflicts when nothing is at the path (CommitInfo's
 * strict_conflict text in Dropbox's API spec: "even if the existing file has been deleted").
 * Replacing keeps the id, gives a new rev and keeps the old contents as a revision. The
 * caller must own the lock, and `tempFile` is consumed on success.
 */
export async function commitFileLocked(
  state: AccountState,
  quotaBytes: number,
  tempFile: string,
  request: CommitRequest,
  fail: FailWith,
): Promise<FileMetadata> {
  let target = await writeTargetOf(state, request.components, fail);
  let replaced: { entry: Entry; record: CatalogRecord } | null = null;
  const mode = request.mode;
  const style = mode.kind === 'update' ? 'conflicted copy' : 'number';
  if (target.existing !== null && target.existing.kind === 'folder') {
    target = await renameOrFail(state, target, request.autorename, 'number', conflict('folder'), fail);
  } else if (target.existing !== null) {
    const entry = target.existing;
    const current = await state.describeFileLocked(entry);
    const record = await state.reconcileLocked(entry);
    const conflicting = mode.kind === 'add' || (mode.kind === 'update' && mode.rev !== record.rev);
    const identical = current !== null && current.content_hash === request.contentHash;
    if (identical && !(request.strictConflict && conflicting)) {
      await rm(tempFile, { force: true });
      return current;
    }
    if (conflicting) {
      target = await renameOrFail(state, target, request.autorename, style, conflict('file'), fail);
    } else {
      replaced = { entry, record };
    }
  } else if (mode.kind === 'update' && request.strictConflict) {
    target = await renameOrFail(state, target, request.autorename, style, conflict('file'), fail);
  }
  const freed = replaced?.record.size ?? 0;
  if (state.catalog.usedBytes - freed + request.size > quotaBytes) {
    throw fail({ '.tag': 'insufficient_space' });
  }
  const parent = await createParentsLocked(state, target);
  const diskPath = join(parent.diskPath, target.name);
  const pathLower = targetPathLower(target);
  if (replaced !== null) {
    await state.revisions.keep(replaced.entry.diskPath, pathLower, replaced.record);
  }
  await rename(tempFile, diskPath);
  if (request.clientModified !== undefined) {
    const seconds = Date.parse(request.clientModified) / 1000;
    await utimes(diskPath, seconds, seconds);
  }
  const stat = await lstat(diskPath, { bigint: true });
  const now = state.nowTimestamp();
  const record: CatalogRecord = {
    kind: 'file',
    id: replaced?.record.id ?? state.catalog.newId(),
    pathDisplay: `${parent.pathDisplay}/${target.name}`,
    inode: inodeOf(stat),
    version: versionOf(stat),
    rev: state.catalog.newRev(),
    size: Number(stat.size),
    clientModified: request.clientModified ?? now,
    serverModified: now,
    contentHash: request.contentHash,
  };
  state.catalog.set(pathLower, record);
  await state.journalPresent(pathLower);
  state.scheduleSave();
  return fileMetadata(pathLower, record, request.contentHash);
}

async function renameOrFail(
  state: AccountState,
  target: WriteTarget,
  autorename: boolean,
  style: 'number' | 'conflicted copy',
  error: ErrorUnion,
  fail: FailWith,
): Promise<WriteTarget> {
  if (!autorename) {
    throw fail(error);
  }
  return autorenamed(state, target, false, style);
}

/** Creates a folder (and missing parents); a folder or file already there is a conflict. */
export async function createFolderLocked(
  state: AccountState,
  components: string[],
  autorename: boolean,
  fail: FailWith,
): Promise<FolderMetadata> {
  let target = await writeTargetOf(state, components, fail);
  if (target.existing !== null) {
    if (!autorename) {
      throw fail(conflict(target.existing.kind));
    }
    target = await autorenamed(state, target, true, 'number');
  }
  const parent = await createParentsLocked(state, { ...target, missing: [...target.missing, target.name] });
  const pathLower = targetPathLower(target);
  return folderMetadata(pathLower, await state.reconcileLocked(parent));
}

/**
 * Deletes an entry and everything below it: renames it into trash/ at once, journals one
 * deletion, keeps a file's contents as an earlier revision and removes the trash later.
 */
export async function deleteEntryLocked(state: AccountState, entry: Entry): Promise<void> {
  const record = await state.reconcileLocked(entry);
  if (entry.kind === 'folder') {
    // Records every entry below, so `include_deleted` can describe each of them afterwards.
    await state.scanLocked(entry, true);
  }
  if (entry.kind === 'file') {
    await state.revisions.keep(entry.diskPath, entry.pathLower, record);
  }
  const trashed = join(state.stateFolder.trashDir, randomBytes(12).toString('hex'));
  await rename(entry.diskPath, trashed);
  state.forgetLocked(entry.pathLower);
  state.scheduleSave();
  void rm(trashed, { recursive: true, force: true });
}
