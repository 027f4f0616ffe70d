/**
 * Scans of the data folder for changes made outside the API. Each entry found is reconciled
 * with the catalog (see account-state.ts), which journals additions and changes. Paths the
 * catalog has but the disk no longer shows are journaled as deletions after the whole scan,
 * so an entry renamed into a folder scanned later still keeps its id.
 */

import type { AccountState } from './account-state.js';
import type { Entry } from './data-folder.js';

/**
 * Scans `folder` (the root when undefined). With `recursive` it scans every folder below;
 * otherwise it descends only into folders that are new or replaced. The caller holds the
 * state lock.
 */
export async function scanFolderTree(state: AccountState, folder: Entry | undefined, recursive: boolean): Promise<void> {
  const missing: string[] = [];
  await scanFolder(state, folder ?? (await state.folder.rootEntry()), recursive, missing);
  for (const pathLower of missing) {
    state.forgetLocked(pathLower);
  }
}

async function scanFolder(state: AccountState, folder: Entry, recursive: boolean, missing: string[]): Promise<void> {
  let children: Entry[];
  try {
    children = await state.folder.listChildren(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return;
    }
    throw error;
  }
  const present = new Set<string>();
  for (const child of children) {
    present.add(child.pathLower);
    const before = state.catalog.get(child.pathLower);
    const record = await state.reconcileLocked(child);
    if (child.kind === 'folder' && (recursive || before !== record)) {
      await scanFolder(state, child, recursive, missing);
    }
  }
  for (const pathLower of state.catalog.childrenOf(folder.pathLower)) {
    if (!present.has(pathLower)) {
      missing.push(pathLower);
    }
  }
}
