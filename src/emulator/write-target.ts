/**
 * Write targets: the existing ancestors of a write path, the folders still to create,
 * what is already at the path, and autorename names. Dropbox creates missing parent folders
 * on every write, and a file among the ancestors is a `conflict/file_ancestor`.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountState } from './account-state.js';
import type { Entry } from './data-folder.js';
import { lowerName } from './paths.js';

export interface WriteTarget {
  /** Deepest existing folder on the way to the path. */
  parent: Entry;
  /** Names of the folders to create below `parent`, outermost first. */
  missing: string[];
  /** Last component as requested, or as on disk when something is there. */
  name: string;
  /** The entry at the path now; null when there is none. */
  existing: Entry | null;
}

export type WriteConflict = 'file' | 'folder' | 'file_ancestor';

/** Locates `components` (not the root); returns 'file_ancestor' when a file is on the way. */
export async function locateTarget(
  state: AccountState,
  components: readonly string[],
): Promise<WriteTarget | 'file_ancestor'> {
  let parent = await state.folder.rootEntry();
  const parents = components.slice(0, -1);
  let index = 0;
  for (; index < parents.length; index++) {
    const child = await state.folder.resolve(parent, [parents[index] as string]);
    if (child === null) {
      break;
    }
    if (child.kind === 'file') {
      return 'file_ancestor';
    }
    parent = child;
  }
  const missing = parents.slice(index);
  const requested = components[components.length - 1] as string;
  const existing = missing.length === 0 ? await state.folder.resolve(parent, [requested]) : null;
  return { parent, missing, name: existing?.name ?? requested, existing };
}

/** Returns the display path the target names. */
export function targetPathDisplay(target: WriteTarget): string {
  return [target.parent.pathDisplay, ...target.missing, target.name].join('/');
}

export function targetPathLower(target: WriteTarget): string {
  return targetPathDisplay(target).split('/').map(lowerName).join('/');
}

/** Creates the target's missing folders, journaling each; returns the parent folder. */
export async function createParentsLocked(state: AccountState, target: WriteTarget): Promise<Entry> {
  let parent = target.parent;
  for (const name of target.missing) {
    await mkdir(join(parent.diskPath, name), { recursive: true });
    const created = await state.folder.resolve(parent, [name]);
    if (created === null || created.kind !== 'folder') {
      throw new Error(`folder ${parent.pathDisplay}/${name} vanished while it was created`);
    }
    await state.reconcileLocked(created);
    parent = created;
  }
  return parent;
}

export type AutorenameStyle = 'number' | 'conflicted copy';

/**
 * Returns the first free autorename variant of the target's name: `name (2).ext`,
 * `name (3).ext`, … for `number` (Dropbox's first renamed copy is `(2)`), and
 * `name (conflicted copy).ext`, then `name (conflicted copy 2).ext`, … for an update
 * conflict. Folders have no extension.
 */
export async function autorenamed(
  state: AccountState,
  target: WriteTarget,
  isFolder: boolean,
  style: AutorenameStyle,
): Promise<WriteTarget> {
  const dot = target.name.lastIndexOf('.');
  const split = !isFolder && dot > 0;
  const stem = split ? target.name.slice(0, dot) : target.name;
  const extension = split ? target.name.slice(dot) : '';
  for (let attempt = style === 'number' ? 2 : 1; ; attempt++) {
    const suffix = style === 'number'
      ? ` (${attempt})`
      : attempt === 1 ? ' (conflicted copy)' : ` (conflicted copy ${attempt})`;
    const name = `${stem}${suffix}${extension}`;
    const existing = target.missing.length === 0 ? await state.folder.resolve(target.parent, [name]) : null;
    if (existing === null) {
      return { ...target, name, existing: null };
    }
  }
}
