/**
 * The served folder in Dropbox terms. Lookups ignore case. Listings skip what Dropbox cannot
 * represent: symlinks, sockets, FIFOs, devices, and names with a backslash or bytes that are
 * not UTF-8, and names Dropbox ignores (see `isRepresentableName`). Ids and revs are not
 * here: the catalog (catalog.ts) stores them.
 */

import type { BigIntStats, Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { componentMatches, isRepresentableName, lowerName } from './paths.js';

export type EntryKind = 'file' | 'folder';

export interface Entry {
  kind: EntryKind;
  diskPath: string;
  /** '' for the root, else '/Name/Sub' with the case found on disk. */
  pathDisplay: string;
  /** Lowercased, NFC-normalized `pathDisplay`: Dropbox's `path_lower`. */
  pathLower: string;
  /** Last component of `pathDisplay`; '' for the root. */
  name: string;
  stat: BigIntStats;
}

export class DataFolder {
  constructor(readonly root: string) {}

  /** Returns the root folder entry. Throws the fs error when the data folder is gone. */
  async rootEntry(): Promise<Entry> {
    const stat = await lstat(this.root, { bigint: true });
    return { kind: 'folder', diskPath: this.root, pathDisplay: '', pathLower: '', name: '', stat };
  }

  /** Follows `components` from `start`, ignoring case; null when any step is missing. */
  async resolve(start: Entry, components: readonly string[]): Promise<Entry | null> {
    let entry: Entry | null = start;
    for (const component of components) {
      if (entry.kind !== 'folder') {
        return null;
      }
      entry = await this.child(entry, component);
      if (entry === null) {
        return null;
      }
    }
    return entry;
  }

  /**
   * Returns the children of `folder` sorted by name. When names on disk differ only in case,
   * Dropbox could hold only one of them, so only the first in UTF-16 code-unit order is listed.
   */
  async listChildren(folder: Entry): Promise<Entry[]> {
    const dirents = await readdir(folder.diskPath, { withFileTypes: true });
    const candidates = dirents.filter(isCandidate).map((dirent) => dirent.name);
    candidates.sort(compareCodeUnits);
    const entries = await Promise.all(candidates.map((name) => this.childNamed(folder, name)));
    const seen = new Set<string>();
    const children: Entry[] = [];
    for (const entry of entries) {
      if (entry !== null && !seen.has(entry.pathLower)) {
        seen.add(entry.pathLower);
        children.push(entry);
      }
    }
    return children;
  }

  /** Yields every entry below `folder`, each folder before its contents. */
  async *walk(folder: Entry): AsyncGenerator<Entry> {
    for (const child of await this.listChildren(folder)) {
      yield child;
      if (child.kind === 'folder') {
        yield* this.walk(child);
      }
    }
  }

  private async child(folder: Entry, component: string): Promise<Entry | null> {
    // Fast path: the request usually carries the name exactly as stored.
    const exact = isRepresentableName(component) ? await this.childNamed(folder, component) : null;
    if (exact !== null) {
      return exact;
    }
    const names = (await readdir(folder.diskPath)).filter(isRepresentableName);
    names.sort(compareCodeUnits);
    const match = names.find((name) => componentMatches(component, name));
    return match === undefined ? null : this.childNamed(folder, match);
  }

  private async childNamed(folder: Entry, name: string): Promise<Entry | null> {
    const diskPath = join(folder.diskPath, name);
    const stat = await lstatOrNull(diskPath);
    return stat === null ? null : this.buildEntry(diskPath, `${folder.pathDisplay}/${name}`, stat);
  }

  private buildEntry(diskPath: string, pathDisplay: string, stat: BigIntStats): Entry | null {
    const kind = kindOf(stat);
    if (kind === null) {
      return null;
    }
    const name = pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1);
    const pathLower = pathDisplay.split('/').map(lowerName).join('/');
    return { kind, diskPath, pathDisplay, pathLower, name, stat };
  }
}

function kindOf(stat: BigIntStats): EntryKind | null {
  if (stat.isFile()) {
    return 'file';
  }
  return stat.isDirectory() ? 'folder' : null;
}

function isCandidate(dirent: Dirent): boolean {
  if (!isRepresentableName(dirent.name)) {
    return false;
  }
  // Some filesystems report no type in readdir; lstat decides for those.
  const typeUnknown = !dirent.isFile() && !dirent.isDirectory() && !dirent.isSymbolicLink()
    && !dirent.isSocket() && !dirent.isFIFO() && !dirent.isBlockDevice() && !dirent.isCharacterDevice();
  return dirent.isFile() || dirent.isDirectory() || typeUnknown;
}

async function lstatOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await lstat(path, { bigint: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return null;
    }
    throw error;
  }
}

function compareCodeUnits(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}
