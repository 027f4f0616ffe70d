/**
 * The files being written, by mount path, and when they are committed: at every close (flush)
 * and fsync of a handle that changed the file, and in the background after a failed commit
 * until one succeeds. Commits that fail after the last handle closed keep the spool file and
 * retry with a growing delay. A restarted daemon finds them in the spool and goes on.
 *
 * Conflict policy (docs/SEMANTICS.md): a commit replaces only the rev the file was opened at.
 * When Dropbox has another rev (an edit made elsewhere meanwhile), the local content is
 * saved beside it as a conflicted copy, the remote edit stays at the path, and the close or
 * fsync that committed reports EEXIST.
 */
import type { MetadataCache } from '../cache/metadata-cache.js';
import { keyOf, splitPath, toDropboxPath } from '../cache/paths.js';
import type { DropboxClient } from '../dropbox/client.js';
import { ApiError } from '../dropbox/errors.js';
import type { FileMetadata, Metadata } from '../dropbox/types.js';
import { Errno, FsError, describeError } from '../fs/errno.js';
import type { Logger } from '../log/logger.js';
import { DirtyFile, type BaseContent, type DirtyFileOptions } from './dirty-file.js';
import type { MtimeOverlay } from './mtime-overlay.js';
import type { SpoolStore } from './spool-store.js';
import { CommitGate } from './upload.js';

export interface DirtyFilesOptions {
  client: DropboxClient;
  cache: MetadataCache;
  store: SpoolStore;
  mtimes: MtimeOverlay;
  log: Logger;
}

// Background retries of a failed commit: the first after this delay, then doubling.
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 10 * 60_000;

export class DirtyFiles {
  readonly #options: DirtyFilesOptions;
  readonly #fileOptions: DirtyFileOptions;
  readonly #files = new Map<string, DirtyFile>();
  /** Recovered files outside the mounted folder: committed, never shown. */
  readonly #unlisted = new Set<DirtyFile>();
  readonly #retryTimers = new Map<DirtyFile, NodeJS.Timeout>();
  readonly #retryDelays = new Map<DirtyFile, number>();
  #stopped = false;

  constructor(options: DirtyFilesOptions) {
    this.#options = options;
    const gate = new CommitGate();
    this.#fileOptions = {
      store: options.store,
      client: options.client,
      log: options.log,
      uploader: { client: options.client, gate, log: options.log },
    };
  }

  get mtimes(): MtimeOverlay {
    return this.#options.mtimes;
  }

  /** Files whose content is not on Dropbox yet, for `status`. */
  get pendingCount(): number {
    let count = 0;
    for (const file of [...this.#files.values(), ...this.#unlisted]) if (file.dirty) count++;
    return count;
  }

  /** Bytes held in the spool, and its limit, for `status`. */
  get spoolUsage(): { usedBytes: number; limitBytes: number } {
    return { usedBytes: this.#options.store.usedBytes, limitBytes: this.#options.store.limitBytes };
  }

  get(path: string): DirtyFile | undefined {
    // Every getattr calls this, so the common case of nothing being written skips the key.
    if (this.#files.size === 0) return undefined;
    return this.#files.get(keyOf(path));
  }

  /** Returns the dirty files directly inside the folder at `path`. */
  childrenOf(path: string): DirtyFile[] {
    const folderKey = keyOf(path);
    return [...this.#files.entries()].filter(([key]) => splitPath(key).parent === folderKey).map(([, file]) => file);
  }

  /** Tells whether any file at or below the folder at `path` is open or waiting for a commit. */
  hasAnyUnder(path: string): boolean {
    const prefix = path === '/' ? '/' : `${keyOf(path)}/`;
    for (const key of this.#files.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** Returns the file at `path`, starting one from `base` (undefined: a new file) if none is. */
  attach(path: string, base: BaseContent | undefined): DirtyFile {
    const key = keyOf(path);
    let file = this.#files.get(key);
    if (file === undefined) {
      file = new DirtyFile(this.#fileOptions, path, this.#dropboxPath(path), base);
      this.#files.set(key, file);
    }
    file.openCount++;
    this.#cancelRetry(file);
    return file;
  }

  /**
   * Commits `file` if it changed, applying the conflict policy, and updates the cache.
   * @throws FsError EEXIST after a conflict (the content went to a conflicted copy), and the
   *   errors of DirtyFile.commit, which errno.ts maps (ENOSPC, EACCES, EINVAL, EIO).
   */
  async commit(file: DirtyFile): Promise<void> {
    let metadata: FileMetadata | undefined;
    try {
      metadata = await file.commit();
    } catch (err) {
      if (!isConflict(err)) {
        this.#options.log.warn({ path: file.path, err: describeError(err) }, 'upload failed; the spool file is kept');
        throw err;
      }
      await this.#saveConflictedCopy(file);
      return;
    }
    if (metadata !== undefined) this.#applied(file, metadata);
  }

  /**
   * Called when a handle on `file` closes. The last close drops a committed file. A dirty one
   * is committed in the background after `commitDelayMs`, or after the retry delay when its
   * last commit failed, and retried until a commit succeeds.
   */
  release(file: DirtyFile, commitDelayMs = 0): void {
    file.openCount = Math.max(0, file.openCount - 1);
    if (file.openCount > 0) return;
    if (file.dirty && file.failedChange !== undefined) {
      this.#options.log.warn(
        { path: file.path, err: describeError(file.failedChange) },
        'a write or truncate failed, so the file was not uploaded; Dropbox keeps its previous content',
      );
      this.#drop(file);
    } else if (file.dirty && isPathRejected(file.lastError)) {
      void this.#setAside(file);
    } else if (file.dirty) {
      this.#scheduleRetry(file, file.lastError === undefined ? commitDelayMs : undefined);
    } else {
      this.#drop(file);
    }
  }

  /**
   * Stops background commits of the file at `path` and every file below it, and waits for the
   * ones running, so that a name change never races an upload that still names the old path.
   * The caller reschedules with `resume`.
   */
  async quiesce(path: string): Promise<DirtyFile[]> {
    const key = keyOf(path);
    const prefix = key === '/' ? '/' : `${key}/`;
    const files = [...this.#files.entries()].filter(([fileKey]) => fileKey === key || fileKey.startsWith(prefix));
    for (const [, file] of files) this.#cancelRetry(file);
    await Promise.all(files.map(([, file]) => file.settled()));
    return files.map(([, file]) => file);
  }

  /** Schedules commits again for closed, dirty files that `quiesce` stopped. */
  resume(files: readonly DirtyFile[]): void {
    for (const file of files) {
      if (file.openCount === 0 && file.dirty && !file.unlinked) this.#scheduleRetry(file, 0);
    }
  }

  /** Re-keys the file at `from` (and every file below it, for a folder) to `to`. */
  async move(from: string, to: string): Promise<void> {
    const fromKey = keyOf(from);
    const prefix = `${fromKey}/`;
    const moved: Array<[string, DirtyFile]> = [];
    for (const [key, file] of this.#files) {
      if (key === fromKey || key.startsWith(prefix)) moved.push([key, file]);
    }
    for (const [key, file] of moved) {
      this.#files.delete(key);
      file.path = to + file.path.slice(from.length);
      file.dropboxPath = this.#dropboxPath(file.path);
      this.#files.set(keyOf(file.path), file);
      await file.saveRecord();
    }
  }

  /** Forgets the file at `path` after an unlink; open handles keep its spool until they close. */
  unlink(path: string): DirtyFile | undefined {
    const file = this.#files.get(keyOf(path));
    if (file === undefined) return undefined;
    file.unlinked = true;
    this.#files.delete(keyOf(path));
    this.#cancelRetry(file);
    if (file.openCount === 0) void file.discard();
    else void file.forget();
    return file;
  }

  /** Marks the file at `from` unlinked and keeps it under `to`, the name libfuse hides it as. */
  async hide(from: string, to: string): Promise<void> {
    const file = this.#files.get(keyOf(from));
    if (file === undefined) return;
    file.unlinked = true;
    this.#cancelRetry(file);
    this.#files.delete(keyOf(from));
    file.path = to;
    this.#files.set(keyOf(to), file);
    await file.forget();
  }

  /** Finds closed content left by an earlier run and commits it in the background. */
  async recover(): Promise<number> {
    const recovered = await this.#options.store.recover();
    const { cache, log } = this.#options;
    const rootKey = keyOf(cache.rootPath);
    for (const { file: spool, record } of recovered) {
      const key = keyOf(record.dropboxPath);
      const inside = key.startsWith(`${rootKey}/`);
      const path = inside ? record.dropboxPath.slice(cache.rootPath.length) : record.dropboxPath;
      const file = DirtyFile.recovered(this.#fileOptions, path, spool, record);
      if (inside && !this.#files.has(keyOf(path))) this.#files.set(keyOf(path), file);
      else this.#unlisted.add(file);
      log.info({ path: record.dropboxPath, bytes: spool.size }, 'resuming an upload left by an earlier run');
      this.#scheduleRetry(file, 0);
    }
    return recovered.length;
  }

  /** Stops background retries and waits up to `graceMs` for commits of closed files to end. */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
    const all = [...this.#files.values(), ...this.#unlisted];
    const waiting = all.filter((file) => file.dirty && file.openCount === 0);
    // Commits that a close started are waited for too, within the same grace period.
    const commits = Promise.allSettled([...waiting.map((file) => this.commit(file)), ...all.map((file) => file.settled())]);
    await Promise.race([commits, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    const closed = all.filter((file) => file.dirty && file.openCount === 0).length;
    const open = all.filter((file) => file.dirty && file.openCount > 0).length;
    if (closed > 0) this.#options.log.warn({ files: closed }, 'uploads still pending at shutdown; the next start resumes them');
    if (open > 0) {
      this.#options.log.warn({ files: open }, 'files still open for writing at shutdown are not uploaded; the next start keeps them under unfinished/');
    }
    await this.#options.mtimes.flush();
  }

  async #saveConflictedCopy(file: DirtyFile): Promise<void> {
    const originalDropboxPath = file.dropboxPath;
    const copyPath = conflictedCopyPath(originalDropboxPath, new Date());
    const metadata = await file.commitCopy(copyPath);
    this.#options.cache.applyChanges([{ ...metadata, '.tag': 'file' }]);
    // The cache still has the rev this file was opened at. The other edit replaces it now, so
    // reads of the path show what Dropbox has without waiting for the change watcher.
    const current = await this.#options.client
      .rpc<Metadata>('files/get_metadata', { path: originalDropboxPath })
      .catch(() => undefined);
    if (current !== undefined) this.#options.cache.applyChanges([current]);
    // The path now shows the other edit from the cache. The file, with its open handles, is
    // the copy from here on, so a later close updates the copy instead of making another.
    const originalPath = file.path;
    const key = keyOf(originalPath);
    if (this.#files.get(key) === file) this.#files.delete(key);
    const copyMountPath = this.#mountPathOf(file.dropboxPath);
    if (copyMountPath !== undefined && !this.#files.has(keyOf(copyMountPath))) {
      file.path = copyMountPath;
      this.#files.set(keyOf(copyMountPath), file);
    } else {
      this.#unlisted.add(file);
    }
    this.#options.log.warn(
      { path: originalPath, savedAs: metadata.path_display ?? copyPath },
      'the file changed on Dropbox while it was open here; the local version was saved as a conflicted copy',
    );
    throw new FsError(
      Errno.EEXIST,
      `${originalPath} changed on Dropbox; the local version was saved as ${metadata.path_display ?? copyPath}`,
    );
  }

  #applied(file: DirtyFile, metadata: FileMetadata): void {
    // A file unlinked while its commit ran is not put back into the cache, because the unlink
    // already removed it on Dropbox.
    if (file.unlinked) return;
    this.#options.cache.applyChanges([{ ...metadata, '.tag': 'file' }]);
  }

  #scheduleRetry(file: DirtyFile, delayMs?: number): void {
    if (this.#stopped || this.#retryTimers.has(file)) return;
    const delay = delayMs ?? this.#retryDelays.get(file) ?? RETRY_FIRST_MS;
    const timer = setTimeout(() => {
      this.#retryTimers.delete(file);
      void this.#retry(file);
    }, delay);
    this.#retryTimers.set(file, timer);
  }

  async #retry(file: DirtyFile): Promise<void> {
    if (file.openCount > 0 || !file.dirty) return;
    try {
      await this.commit(file);
      this.#retryDelays.delete(file);
      this.#options.log.info({ path: file.path }, 'pending upload committed');
      if (file.openCount === 0) this.#drop(file);
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.EEXIST) {
        if (file.openCount === 0) this.#drop(file);
        return;
      }
      if (isPathRejected(err)) {
        if (file.openCount === 0) await this.#setAside(file);
        return;
      }
      const next = Math.min(RETRY_MAX_MS, 2 * (this.#retryDelays.get(file) ?? RETRY_FIRST_MS));
      this.#retryDelays.set(file, next);
      this.#scheduleRetry(file);
    }
  }

  // Content whose path Dropbox rejects would be retried for ever and take spool space, so it is
  // moved to the `unfinished` folder instead, which keeps its bytes and record.
  async #setAside(file: DirtyFile): Promise<void> {
    this.#cancelRetry(file);
    this.#retryDelays.delete(file);
    this.#unlisted.delete(file);
    const key = keyOf(file.path);
    if (this.#files.get(key) === file) this.#files.delete(key);
    file.unlinked = true;
    const keptPath = await file.setAside();
    this.#options.log.warn(
      { path: file.dropboxPath, kept: keptPath, err: describeError(file.lastError) },
      'Dropbox refuses this path, so the file will not be uploaded; its bytes are kept',
    );
  }

  #cancelRetry(file: DirtyFile): void {
    const timer = this.#retryTimers.get(file);
    if (timer !== undefined) clearTimeout(timer);
    this.#retryTimers.delete(file);
  }

  #drop(file: DirtyFile): void {
    this.#cancelRetry(file);
    this.#retryDelays.delete(file);
    this.#unlisted.delete(file);
    const key = keyOf(file.path);
    if (this.#files.get(key) === file) this.#files.delete(key);
    void file.discard();
  }

  // Returns the mount path of a Dropbox path under the mount root, else undefined.
  #mountPathOf(dropboxPath: string): string | undefined {
    const { rootPath } = this.#options.cache;
    if (!keyOf(dropboxPath).startsWith(`${keyOf(rootPath)}/`)) return undefined;
    return dropboxPath.slice(rootPath.length);
  }

  #dropboxPath(path: string): string {
    return toDropboxPath(this.#options.cache.rootPath, path);
  }
}

// Dropbox errors that another attempt cannot change, because the path itself is rejected.
function isPathRejected(err: unknown): boolean {
  return err instanceof ApiError && (err.has('malformed_path') || err.has('disallowed_name'));
}

function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.has('conflict');
}

/** `/a/notes.txt` -> `/a/notes (conflicted copy 2026-12-04 193501).txt`, in UTC. */
export function conflictedCopyPath(dropboxPath: string, when: Date): string {
  const slash = dropboxPath.lastIndexOf('/');
  const folder = dropboxPath.slice(0, slash + 1);
  const name = dropboxPath.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  const stamp = when.toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '');
  return `${folder}${stem} (conflicted copy ${stamp})${extension}`;
}
