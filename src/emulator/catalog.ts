/**
 * The catalog: what Dropbox stores about each entry beyond its bytes (id, rev, times, content
 * hash), keyed by `path_lower`. The data folder stays the truth for which entries exist and
 * what they contain. The catalog is the truth for identity and versions, so an id survives a
 * move, an overwrite by rename and a restart, which an id derived from the inode could not.
 *
 * It is persisted as JSON in the state folder (see state-folder.ts), never inside the data
 * folder, so listings never see it. Paths of deleted entries are kept, bounded, so that
 * `include_deleted` can describe them.
 */

import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';

export interface CatalogRecord {
  kind: 'file' | 'folder';
  id: string;
  pathDisplay: string;
  /** Device, inode and birth time: lets a rename made on disk keep the entry's id. */
  inode: string;
  /** Files only: inode, mtime in ns and size of the version the rev belongs to. */
  version?: string;
  rev?: string;
  size?: number;
  /** DropboxTimestamps; absent means "the mtime" (client) or "when first seen" (server). */
  clientModified?: string;
  serverModified?: string;
  /** Content hash of `version`, once computed. */
  contentHash?: string;
}

export interface DeletedRecord {
  pathDisplay: string;
}

export interface CatalogSnapshot {
  records: Array<[string, CatalogRecord]>;
  deleted: Array<[string, DeletedRecord]>;
  revCounter: number;
}

// Deleted paths remembered for `include_deleted`; older ones are forgotten first.
const MAX_DELETED_PATHS = 10_000;

export function inodeOf(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.birthtimeNs}`;
}

export function versionOf(stat: BigIntStats): string {
  return `${stat.ino}:${stat.mtimeNs}:${stat.size}`;
}

/** Returns the parent's `path_lower` of a non-root `path_lower` ('' for top-level entries). */
export function parentOf(pathLower: string): string {
  return pathLower.slice(0, pathLower.lastIndexOf('/'));
}

/** True when `pathLower` is `ancestor` or lies below it; '' is the root and contains all. */
export function isWithin(pathLower: string, ancestor: string): boolean {
  return ancestor === '' || pathLower === ancestor || pathLower.startsWith(ancestor + '/');
}

export class Catalog {
  private readonly records = new Map<string, CatalogRecord>();
  private readonly children = new Map<string, Set<string>>();
  private readonly pathsById = new Map<string, string>();
  private readonly pathsByInode = new Map<string, string>();
  private readonly deleted = new Map<string, DeletedRecord>();
  private revCounter = 0;
  /** Sum of file sizes, for users/get_space_usage and the quota check. */
  usedBytes = 0;

  get(pathLower: string): CatalogRecord | undefined {
    return this.records.get(pathLower);
  }

  pathOfId(id: string): string | undefined {
    return this.pathsById.get(id);
  }

  /** Returns the `path_lower`s of the recorded children of a folder. */
  childrenOf(pathLower: string): string[] {
    return [...(this.children.get(pathLower) ?? [])];
  }

  /** Returns the path of the recorded entry whose inode key is `inode`. */
  pathOfInode(inode: string): string | undefined {
    return this.pathsByInode.get(inode);
  }

  /** Returns the path of the current file whose rev is `rev`. */
  findByRev(rev: string): string | undefined {
    for (const [pathLower, record] of this.records) {
      if (record.rev === rev) {
        return pathLower;
      }
    }
    return undefined;
  }

  deletedAt(pathLower: string): DeletedRecord | undefined {
    return this.deleted.get(pathLower);
  }

  /** Returns the remembered deletions directly inside `parent` (or anywhere below it). */
  deletedBelow(parent: string, recursive: boolean): Array<[string, DeletedRecord]> {
    return [...this.deleted].filter(([pathLower]) =>
      pathLower !== parent && (recursive ? isWithin(pathLower, parent) : parentOf(pathLower) === parent));
  }

  set(pathLower: string, record: CatalogRecord): void {
    const previous = this.records.get(pathLower);
    if (previous !== undefined) {
      this.pathsById.delete(previous.id);
      this.pathsByInode.delete(previous.inode);
      this.usedBytes -= previous.size ?? 0;
    }
    this.records.set(pathLower, record);
    this.pathsById.set(record.id, pathLower);
    this.pathsByInode.set(record.inode, pathLower);
    this.usedBytes += record.size ?? 0;
    this.deleted.delete(pathLower);
    // Links every ancestor too, so a subtree operation reaches entries whose parent folder
    // has no record yet.
    for (let path = pathLower; path !== ''; path = parentOf(path)) {
      const parent = parentOf(path);
      let siblings = this.children.get(parent);
      if (siblings === undefined) {
        siblings = new Set();
        this.children.set(parent, siblings);
      }
      if (siblings.has(path)) {
        break;
      }
      siblings.add(path);
    }
  }

  /** Removes an entry and everything recorded below it; returns the removed records. */
  removeSubtree(pathLower: string): Array<[string, CatalogRecord]> {
    const removed: Array<[string, CatalogRecord]> = [];
    const visit = (path: string) => {
      for (const child of this.childrenOf(path)) {
        visit(child);
      }
      const record = this.records.get(path);
      if (record !== undefined) {
        removed.push([path, record]);
        this.records.delete(path);
        this.pathsById.delete(record.id);
        this.pathsByInode.delete(record.inode);
        this.usedBytes -= record.size ?? 0;
        this.rememberDeleted(path, record.pathDisplay);
      }
      this.children.delete(path);
      this.children.get(parentOf(path))?.delete(path);
    };
    visit(pathLower);
    return removed;
  }

  /**
   * Moves an entry and its recorded descendants to `toLower`/`toDisplay`, keeping ids and revs.
   * Returns the new `path_lower`s, the moved entry first.
   */
  moveSubtree(fromLower: string, toLower: string, toDisplay: string): string[] {
    const removed = this.removeSubtree(fromLower).reverse();
    const moved: string[] = [];
    for (const [pathLower, record] of removed) {
      const suffixLower = pathLower.slice(fromLower.length);
      // The suffix is taken by path components, not characters: a name stored in NFD is longer
      // than its NFC key, so a character count would cut into the moved folder's own name.
      const depth = suffixLower === '' ? 0 : suffixLower.split('/').length - 1;
      const components = record.pathDisplay.split('/');
      const suffixDisplay = depth === 0 ? '' : `/${components.slice(components.length - depth).join('/')}`;
      const newLower = toLower + suffixLower;
      this.set(newLower, { ...record, pathDisplay: toDisplay + suffixDisplay });
      moved.push(newLower);
    }
    return moved;
  }

  newId(): string {
    return 'id:' + randomBytes(16).toString('base64url');
  }

  /**
   * Returns a fresh rev: a counter in 9 or more hex digits, then 6 random digits, so revs stay
   * unique even when the state folder was lost and the counter restarted.
   */
  newRev(): string {
    this.revCounter++;
    return this.revCounter.toString(16).padStart(9, '0') + randomBytes(3).toString('hex');
  }

  snapshot(): CatalogSnapshot {
    return { records: [...this.records], deleted: [...this.deleted], revCounter: this.revCounter };
  }

  restore(snapshot: CatalogSnapshot): void {
    for (const [pathLower, record] of snapshot.records) {
      this.set(pathLower, record);
    }
    for (const [pathLower, record] of snapshot.deleted) {
      this.deleted.set(pathLower, record);
    }
    this.revCounter = snapshot.revCounter;
  }

  private rememberDeleted(pathLower: string, pathDisplay: string): void {
    this.deleted.delete(pathLower);
    this.deleted.set(pathLower, { pathDisplay });
    if (this.deleted.size > MAX_DELETED_PATHS) {
      const oldest = this.deleted.keys().next().value as string;
      this.deleted.delete(oldest);
    }
  }
}
