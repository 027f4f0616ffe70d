/**
 * The account's state: the data folder, the catalog, the change journal and the revision
 * store, kept consistent with one another.
 *
 * Reconciling: whenever a route meets an entry, or a scan of the data folder finds one, the
 * entry's stat is compared with its catalog record. A new path gets a record and a journal
 * addition; a changed file gets a new rev and a journal entry; a path gone from disk gets a
 * journal deletion. A new path whose inode belonged to a path that vanished is taken as a
 * rename made on disk and keeps its id. So a client sees the same changes whether it looks
 * through get_metadata, a listing or list_folder/continue.
 *
 * Every change of the catalog runs under one lock (`exclusive`), so two requests meeting
 * the same new file cannot give it two ids or journal it twice.
 */

import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Catalog, inodeOf, isWithin, versionOf, type CatalogRecord } from './catalog.js';
import type { DataFolder, Entry } from './data-folder.js';
import type { ContentHashCache } from './hash-cache.js';
import { Journal, type ChangeMetadata, type DeletedMetadata } from './journal.js';
import {
  dropboxTimestamp,
  fileMetadata,
  folderMetadata,
  taggedFile,
  taggedFolder,
  type FileMetadata,
  type TaggedMetadata,
} from './metadata.js';
import { scanFolderTree } from './folder-scan.js';
import { RevisionStore } from './revisions.js';
import { loadState, openStateFolder, saveState, type StateFolder } from './state-folder.js';

// Batches catalog writes: a burst of uploads costs one write of catalog.json.
const SAVE_DELAY_MS = 200;

export interface AccountStateOptions {
  stateDir: string;
  maxRevisionBytes: number;
  now: () => number;
}

export class AccountState {
  readonly catalog = new Catalog();
  readonly journal = new Journal();
  /**
   * `path_lower`s of read-only folders, set through the control endpoint: API writes at or
   * below them fail with `no_write_permission`, as in a view-only shared folder.
   */
  readonly readOnlyPaths = new Set<string>();
  private lock: Promise<unknown> = Promise.resolve();
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  /** True while the start-up scan runs: it records entries without journaling them. */
  private quiet = false;

  private constructor(
    readonly folder: DataFolder,
    readonly hashes: ContentHashCache,
    readonly stateFolder: StateFolder,
    readonly revisions: RevisionStore,
    private readonly now: () => number,
  ) {}

  /** Opens the state folder, restores the saved catalog and reconciles it with the disk. */
  static async open(folder: DataFolder, hashes: ContentHashCache, options: AccountStateOptions) {
    const stateFolder = await openStateFolder(options.stateDir, folder.root);
    const revisions = new RevisionStore(stateFolder.revsDir, options.maxRevisionBytes);
    const state = new AccountState(folder, hashes, stateFolder, revisions, options.now);
    const saved = await loadState(stateFolder, folder.root);
    if (saved !== null) {
      state.catalog.restore(saved.catalog);
      revisions.restore(saved.revisions);
    }
    state.quiet = true;
    try {
      await state.exclusive(() => state.scanLocked(undefined, true));
    } finally {
      state.quiet = false;
    }
    return state;
  }

  /** True when an API write at `pathLower` falls in a read-only folder. */
  isReadOnly(pathLower: string): boolean {
    return [...this.readOnlyPaths].some((readOnly) => isWithin(pathLower, readOnly));
  }

  /** True when deleting or moving `pathLower` would change a read-only folder or its contents. */
  touchesReadOnly(pathLower: string): boolean {
    return [...this.readOnlyPaths].some((readOnly) => isWithin(pathLower, readOnly) || isWithin(readOnly, pathLower));
  }

  /** Runs `task` after every earlier task, so catalog changes never interleave. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.lock.then(task);
    this.lock = result.catch(() => undefined);
    return result;
  }

  /** Returns the entry's record, reconciling it with the disk first (see the file comment). */
  async recordOf(entry: Entry): Promise<CatalogRecord> {
    const record = this.catalog.get(entry.pathLower);
    if (record !== undefined && matches(record, entry)) {
      return record;
    }
    return this.exclusive(() => this.reconcileLocked(entry));
  }

  /** Returns the tagged metadata of an entry; null when a file disappeared meanwhile. */
  async describe(entry: Entry): Promise<TaggedMetadata | null> {
    if (entry.kind === 'folder') {
      return taggedFolder(folderMetadata(entry.pathLower, await this.recordOf(entry)));
    }
    const metadata = await this.describeFile(entry);
    return metadata === null ? null : taggedFile(metadata);
  }

  /** Returns the FileMetadata of a file entry; null when it disappeared meanwhile. */
  describeFile(entry: Entry): Promise<FileMetadata | null> {
    return this.describeFileWith(entry, () => this.recordOf(entry));
  }

  /** Like describeFile, for a caller that holds the lock. */
  describeFileLocked(entry: Entry): Promise<FileMetadata | null> {
    return this.describeFileWith(entry, () => this.reconcileLocked(entry));
  }

  private async describeFileWith(entry: Entry, recordOf: () => Promise<CatalogRecord>): Promise<FileMetadata | null> {
    try {
      const record = await recordOf();
      return fileMetadata(entry.pathLower, record, await this.contentHashOf(entry, record));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
        return null;
      }
      throw error;
    }
  }

  /** Describes a recorded path from its record alone, hashing the file when needed. */
  async describeRecorded(pathLower: string): Promise<TaggedMetadata | null> {
    const record = this.catalog.get(pathLower);
    if (record === undefined) {
      return null;
    }
    if (record.kind === 'folder') {
      return taggedFolder(folderMetadata(pathLower, record));
    }
    const diskPath = this.diskPathOf(record.pathDisplay);
    const stat = await lstat(diskPath, { bigint: true });
    const entry: Entry = { kind: 'file', diskPath, pathDisplay: record.pathDisplay, pathLower, name: '', stat };
    return taggedFile(fileMetadata(pathLower, record, await this.contentHashOf(entry, record)));
  }

  diskPathOf(pathDisplay: string): string {
    return join(this.folder.root, ...pathDisplay.split('/'));
  }

  /**
   * Appends the current metadata of a recorded path to the journal. A file whose content
   * hash is not known yet is journaled with an empty `content_hash`, which `completeChange`
   * fills in when the entry is replayed, so that noticing 2,000 new files does not hash
   * them one by one under the lock.
   */
  async journalPresent(pathLower: string): Promise<void> {
    const record = this.catalog.get(pathLower);
    if (this.quiet || record === undefined) {
      return;
    }
    const metadata = record.kind === 'folder'
      ? taggedFolder(folderMetadata(pathLower, record))
      : taggedFile(fileMetadata(pathLower, record, record.contentHash ?? ''));
    this.journal.append(pathLower, metadata);
  }

  /**
   * Returns a journaled change ready to send: a file journaled without its content hash gets
   * it now, if that rev is still current. A stale one returns null and is left out, because
   * a later journal entry for the same path supersedes it.
   */
  async completeChange(metadata: ChangeMetadata): Promise<ChangeMetadata | null> {
    if (metadata['.tag'] !== 'file' || metadata.content_hash !== '') {
      return metadata;
    }
    const record = this.catalog.get(metadata.path_lower);
    if (record === undefined || record.rev !== metadata.rev) {
      return null;
    }
    const current = await this.describeRecorded(metadata.path_lower).catch(() => null);
    return current !== null && current['.tag'] === 'file' && current.rev === metadata.rev ? current : null;
  }

  /** Appends a deletion to the journal. */
  journalDeleted(pathLower: string, pathDisplay: string): void {
    if (this.quiet) {
      return;
    }
    this.journal.append(pathLower, deletedMetadata(pathLower, pathDisplay));
    this.scheduleSave();
  }

  /** Removes a recorded path and everything below it, journaling one deletion. */
  forgetLocked(pathLower: string): void {
    const record = this.catalog.get(pathLower);
    const removed = this.catalog.removeSubtree(pathLower);
    // A folder never recorded itself takes its display path from a recorded descendant.
    const display = record?.pathDisplay
      ?? removed[0]?.[1].pathDisplay.split('/').slice(0, pathLower.split('/').length).join('/');
    if (display !== undefined) {
      this.journalDeleted(pathLower, display);
    }
  }

  /** Reconciles one entry (see the file comment); the caller holds the lock. */
  async reconcileLocked(entry: Entry): Promise<CatalogRecord> {
    const existing = this.catalog.get(entry.pathLower);
    if (existing !== undefined && matches(existing, entry)) {
      return existing;
    }
    if (existing !== undefined && (existing.kind !== entry.kind || entry.kind === 'folder')) {
      this.forgetLocked(entry.pathLower);
    }
    const adopted = existing === undefined ? await this.adoptRenamed(entry) : undefined;
    const id = this.catalog.get(entry.pathLower)?.id ?? adopted?.id ?? this.catalog.newId();
    const record: CatalogRecord = { kind: entry.kind, id, pathDisplay: entry.pathDisplay, inode: inodeOf(entry.stat) };
    if (entry.kind === 'file') {
      const modified = dropboxTimestamp(entry.stat.mtimeNs);
      Object.assign(record, {
        version: versionOf(entry.stat),
        rev: this.catalog.newRev(),
        size: Number(entry.stat.size),
        clientModified: modified,
        serverModified: modified,
      });
    }
    this.catalog.set(entry.pathLower, record);
    await this.journalPresent(entry.pathLower);
    for (const pathLower of adopted?.movedBelow ?? []) {
      await this.journalPresent(pathLower);
    }
    this.scheduleSave();
    return record;
  }

  /**
   * Takes over the id of a recorded entry with the same inode whose path no longer exists:
   * a rename made on disk. Journals the old path's deletion. A folder's recorded children
   * move with it and keep their ids; their paths are returned for journaling.
   */
  private async adoptRenamed(entry: Entry): Promise<{ id: string; movedBelow: string[] } | undefined> {
    const oldPath = this.catalog.pathOfInode(inodeOf(entry.stat));
    const old = oldPath === undefined ? undefined : this.catalog.get(oldPath);
    if (oldPath === undefined || old === undefined || oldPath === entry.pathLower || old.kind !== entry.kind) {
      return undefined;
    }
    const still = await lstat(this.diskPathOf(old.pathDisplay), { bigint: true }).catch(() => null);
    if (still !== null && inodeOf(still) === old.inode) {
      return undefined;
    }
    if (entry.kind === 'file') {
      this.forgetLocked(oldPath);
      return { id: old.id, movedBelow: [] };
    }
    const moved = this.catalog.moveSubtree(oldPath, entry.pathLower, entry.pathDisplay);
    this.journalDeleted(oldPath, old.pathDisplay);
    return { id: old.id, movedBelow: moved.slice(1) };
  }

  /**
   * Scans `folder` (the root when undefined) for changes made on disk and journals them; see
   * folder-scan.ts. The caller holds the lock.
   */
  scanLocked(folder: Entry | undefined, recursive: boolean): Promise<void> {
    return scanFolderTree(this, folder, recursive);
  }

  /** Writes catalog.json soon; several changes in a row cost one write. */
  scheduleSave(): void {
    if (this.saveTimer !== undefined) {
      return;
    }
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saving = this.saving.then(() => this.save()).catch(() => undefined);
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  /** Saves pending changes and removes the trash; call once when the emulator stops. */
  async close(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saving;
    await this.exclusive(() => this.save());
    await rm(this.stateFolder.trashDir, { recursive: true, force: true });
  }

  nowTimestamp(): string {
    return dropboxTimestamp(BigInt(Math.floor(this.now())) * 1_000_000n);
  }

  private async contentHashOf(entry: Entry, record: CatalogRecord): Promise<string> {
    if (record.contentHash !== undefined) {
      return record.contentHash;
    }
    const version = await this.hashes.hashOf(entry.diskPath, entry.stat);
    if (versionOf(version.stat) === record.version) {
      record.contentHash = version.contentHash;
    }
    return version.contentHash;
  }

  private async save(): Promise<void> {
    await saveState(this.stateFolder, {
      version: 1,
      dataDir: this.folder.root,
      catalog: this.catalog.snapshot(),
      revisions: this.revisions.list(),
    });
  }
}

function matches(record: CatalogRecord, entry: Entry): boolean {
  if (record.kind !== entry.kind) {
    return false;
  }
  if (record.pathDisplay !== entry.pathDisplay) {
    // A case-only rename on disk; Dropbox does not report those as changes.
    record.pathDisplay = entry.pathDisplay;
  }
  return entry.kind === 'folder' ? record.inode === inodeOf(entry.stat) : record.version === versionOf(entry.stat);
}

export function deletedMetadata(pathLower: string, pathDisplay: string): DeletedMetadata {
  const name = pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1);
  return { '.tag': 'deleted', name, path_lower: pathLower, path_display: pathDisplay };
}
