/**
 * Moves and copies made through the API (files/move_v2, files/copy_v2, the move control
 * endpoint). A move is one rename(2) in the data folder. The catalog moves the entry's
 * records, so ids and revs survive. The journal gets the old path's deletion and an addition
 * for the new path and everything below it. A copy is made in tmp/ first and
 * renamed into place, and its entries get new ids.
 */

import { cp, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AccountState } from './account-state.js';
import { isWithin } from './catalog.js';
import type { Entry } from './data-folder.js';
import type { ErrorUnion, HttpError } from './errors.js';
import type { TaggedMetadata } from './metadata.js';
import { autorenamed, createParentsLocked, targetPathLower, type WriteTarget } from './write-target.js';
import { conflict, writeTargetOf } from './write-ops.js';

export interface RelocateRequest {
  from: Entry;
  toComponents: string[];
  autorename: boolean;
  copy: boolean;
}

/** Wraps a RelocationError union (`to`, `cant_move_folder_into_itself`, …) into an HttpError. */
export type FailRelocation = (error: ErrorUnion) => HttpError;

/** Moves or copies `from`; returns the metadata at the new path. The caller holds the lock. */
export async function relocateLocked(
  state: AccountState,
  quotaBytes: number,
  request: RelocateRequest,
  fail: FailRelocation,
): Promise<TaggedMetadata> {
  const { from } = request;
  const failTo = (writeError: ErrorUnion) => fail({ '.tag': 'to', to: writeError });
  let target = await writeTargetOf(state, request.toComponents, failTo);
  const toLower = targetPathLower(target);
  if (from.kind === 'folder' && isWithin(toLower, from.pathLower) && toLower !== from.pathLower) {
    throw fail({ '.tag': 'cant_move_folder_into_itself' });
  }
  const caseOnly = !request.copy && target.existing !== null && target.existing.pathLower === from.pathLower;
  if (target.existing !== null && !caseOnly) {
    if (!request.autorename) {
      throw failTo(conflict(target.existing.kind));
    }
    target = await autorenamed(state, target, from.kind === 'folder', 'number');
  }
  if (caseOnly) {
    // Dropbox does not report case-only renames as changes, so nothing is journaled.
    target = { ...target, name: request.toComponents[request.toComponents.length - 1] as string };
  }
  if (request.copy && state.catalog.usedBytes + subtreeBytes(state, from.pathLower) > quotaBytes) {
    throw fail({ '.tag': 'insufficient_quota' });
  }
  const parent = await createParentsLocked(state, target);
  const diskPath = join(parent.diskPath, target.name);
  const pathDisplay = `${parent.pathDisplay}/${target.name}`;
  const pathLower = targetPathLower(target);
  if (request.copy) {
    return copyLocked(state, from, parent, target);
  }
  await state.reconcileLocked(from);
  if (from.kind === 'folder') {
    // Every entry below must have a record, so that it moves with its id and is journaled.
    await state.scanLocked(from, true);
  }
  await rename(from.diskPath, diskPath);
  const moved = state.catalog.moveSubtree(from.pathLower, pathLower, pathDisplay);
  if (!caseOnly) {
    state.journalDeleted(from.pathLower, from.pathDisplay);
    for (const path of moved) {
      await state.journalPresent(path);
    }
  }
  state.scheduleSave();
  return described(state, pathLower);
}

async function copyLocked(state: AccountState, from: Entry, parent: Entry, target: WriteTarget): Promise<TaggedMetadata> {
  const staged = join(state.stateFolder.tmpDir, `copy-${randomBytes(12).toString('hex')}`);
  await cp(from.diskPath, staged, { recursive: true, preserveTimestamps: true, errorOnExist: true });
  await rename(staged, join(parent.diskPath, target.name));
  const copied = await state.folder.resolve(parent, [target.name]);
  if (copied === null) {
    throw new Error(`copy of ${from.pathDisplay} vanished after it was renamed into place`);
  }
  await state.reconcileLocked(copied);
  if (copied.kind === 'folder') {
    await state.scanLocked(copied, true);
  }
  return described(state, copied.pathLower);
}

async function described(state: AccountState, pathLower: string): Promise<TaggedMetadata> {
  const metadata = await state.describeRecorded(pathLower);
  if (metadata === null) {
    throw new Error(`${pathLower} has no catalog record after it was written`);
  }
  return metadata;
}

function subtreeBytes(state: AccountState, pathLower: string): number {
  let total = state.catalog.get(pathLower)?.size ?? 0;
  for (const child of state.catalog.childrenOf(pathLower)) {
    total += subtreeBytes(state, child);
  }
  return total;
}
