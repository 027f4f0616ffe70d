/**
 * The served folder in Dropbox terms. Lookups ignore case. Listings skip what Dropbox cannot
 * represent: symlinks, sockets, FIFOs, devices, and names with a backslash or bytes that are
 * not UTF-8. Entry ids survive renames and restarts.
 *
 * Ids come from the inode number and birth time (see `entryIdOf`), so no index has to live
 * inside or beside the data folder. An `id:` lookup uses an in-memory map from id to path,
 * filled by every lookup and listing, and walks the whole tree once when the map misses.
 */

import { createHash } from 'node:crypto';
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

/**
 * Returns the Dropbox id of an entry: 16 bytes of SHA-256 over inode and birth time, in
 * base64url, like Dropbox's 22-character ids. Renames keep both values, so the id survives
 * them. Where the filesystem records birth time (ext4, xfs, btrfs, tmpfs), it keeps a
 * recycled inode number from reviving a deleted entry's id. Elsewhere it is 0.
 * NOTE: replacing a file by writing a new one and renaming it over the old one gives a new
 * id, while Dropbox keeps the id when a path is overwritten.
 */
export function entryIdOf(stat: BigIntStats): string {
  const digest = createHash('sha256').update(`${stat.ino}:${stat.birthtimeNs}`).digest();
  return 'id:' + digest.subarray(0, 16).toString('base64url');
}

export class DataFolder {
  private readonly pathsById = new Map<string, { diskPath: string; pathDisplay: string }>();

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

  /** Finds the entry with `id`; walks the whole tree when the id map misses. */
  async findById(id: string): Promise<Entry | null> {
    const known = await this.verifyKnownId(id);
    if (known !== null) {
      return known;
    }
    for await (const _entry of this.walk(await this.rootEntry())) {
      // The walk refreshes the id map as a side effect of building each entry.
    }
    return this.verifyKnownId(id);
  }

  private async verifyKnownId(id: string): Promise<Entry | null> {
    const known = this.pathsById.get(id);
    if (known === undefined) {
      return null;
    }
    const stat = await lstatOrNull(known.diskPath);
    if (stat === null || entryIdOf(stat) !== id) {
      this.pathsById.delete(id);
      return null;
    }
    return this.buildEntry(known.diskPath, known.pathDisplay, stat);
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
    this.pathsById.set(entryIdOf(stat), { diskPath, pathDisplay });
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
