/**
 * Changes to names: mkdir, rmdir, unlink and rename, each as Dropbox calls whose results are
 * applied to the metadata cache at once, so the next lookup returns them without waiting for
 * the change watcher.
 *
 * Dropbox has no atomic replace: a rename over an existing file deletes the target (only the
 * rev that was looked up) and then moves the source. Between the two calls the target name is
 * absent; if the move fails the old target is in Dropbox's deleted files (docs/SEMANTICS.md).
 */
import type { Deadline } from '../fs/deadline.js';
import type { MetadataCache, Node } from '../cache/metadata-cache.js';
import { splitPath, keyOf, toDropboxPath } from '../cache/paths.js';
import type { DropboxClient } from '../dropbox/client.js';
import type { ListFolderResult, Metadata } from '../dropbox/types.js';
import { Errno, FsError } from '../fs/errno.js';
import type { Logger } from '../log/logger.js';
import type { DirtyFiles } from './dirty-files.js';

export interface NamespaceOptions {
  client: DropboxClient;
  cache: MetadataCache;
  files: DirtyFiles;
  log: Logger;
}

// The name libfuse gives a file unlinked while open (`.fuse_hidden` and 16 hex digits).
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]+$/;

export interface RenameOptions {
  /** Aborted when the op's deadline has replied; the rename is then not made. */
  signal?: Deadline;
  /** True when a handle is open on the source, which is when libfuse hides a file. */
  sourceOpen?: boolean;
}

export class Namespace {
  readonly #options: NamespaceOptions;

  constructor(options: NamespaceOptions) {
    this.#options = options;
  }

  /** @throws FsError EEXIST, ENOENT or ENOTDIR; ApiError mapped by errno.ts. */
  async mkdir(path: string): Promise<void> {
    await this.#parentFolder(path);
    if ((await this.#find(path)) !== undefined || this.#options.files.get(path) !== undefined) {
      throw new FsError(Errno.EEXIST, `${path} already exists`);
    }
    const result = await this.#options.client.rpc<{ metadata: Metadata }>('files/create_folder_v2', {
      path: this.#dropboxPath(path),
      autorename: false,
    });
    this.#options.cache.applyChanges([{ ...result.metadata, '.tag': 'folder' } as Metadata]);
  }

  /** @throws FsError ENOTEMPTY when the folder is not empty, ENOTDIR, ENOENT. */
  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new FsError(Errno.EBUSY, 'the mount root cannot be removed');
    const node = await this.#options.cache.lookup(path);
    if (node.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${path} is not a folder`);
    await this.#requireEmpty(path);
    await this.#delete(path, node);
  }

  /** @throws FsError ENOENT, EISDIR for a folder; ApiError mapped by errno.ts. */
  async unlink(path: string, signal?: Deadline): Promise<void> {
    const { files } = this.#options;
    const stopped = await files.quiesce(path);
    try {
      throwIfTimedOut(signal, 'unlink', path);
      await this.#unlink(path, signal);
    } catch (err) {
      files.resume(stopped);
      throw err;
    }
  }

  async #unlink(path: string, signal?: Deadline): Promise<void> {
    const { files } = this.#options;
    const dirty = files.get(path);
    const node = await this.#find(path);
    if (node?.kind === 'dir') throw new FsError(Errno.EISDIR, `${path} is a folder`);
    if (node === undefined && dirty === undefined) throw new FsError(Errno.ENOENT, `${path} does not exist`);
    // A file created here and not committed yet exists only in the spool.
    throwIfTimedOut(signal, 'unlink', path);
    if (node !== undefined && !(dirty !== undefined && dirty.baseRev === undefined)) {
      await this.#delete(path, node);
    }
    files.unlink(path);
  }

  /**
   * Renames a file or folder, replacing an existing file, or an empty folder when the source is
   * a folder, as rename(2) does.
   * @throws FsError ENOENT, EISDIR, ENOTDIR, ENOTEMPTY, EINVAL (a folder into itself).
   */
  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    if (from === to) return;
    const { files } = this.#options;
    // Uploads under the old name finish first, and nothing new starts until the move is done.
    const stopped = await files.quiesce(from);
    try {
      throwIfTimedOut(options.signal, 'rename', from);
      // Only libfuse renames an open file to a hidden name; a user's rename to such a name is
      // an ordinary rename.
      if (options.sourceOpen === true && HIDDEN_NAME.test(splitPath(to).name)) await this.#hide(from, to);
      else await this.#move(from, to, options.signal);
    } finally {
      files.resume(stopped);
    }
  }

  async #move(from: string, to: string, signal?: Deadline): Promise<void> {
    const { files, cache, client } = this.#options;
    const sourceDirty = files.get(from);
    const source = await this.#find(from);
    if (source === undefined && sourceDirty === undefined) throw new FsError(Errno.ENOENT, `${from} does not exist`);
    const sourceIsDir = source?.kind === 'dir';
    if (sourceIsDir && keyOf(to).startsWith(`${keyOf(from)}/`)) {
      throw new FsError(Errno.EINVAL, `${from} cannot be moved into itself`);
    }
    await this.#parentFolder(to);
    const sameName = keyOf(from) === keyOf(to);
    const target = sameName ? undefined : await this.#find(to);
    const targetDirty = sameName ? undefined : files.get(to);
    if (target?.kind === 'dir') {
      if (!sourceIsDir) throw new FsError(Errno.EISDIR, `${to} is a folder`);
      await this.#requireEmpty(to);
    } else if ((target !== undefined || targetDirty !== undefined) && sourceIsDir) {
      throw new FsError(Errno.ENOTDIR, `${to} is not a folder`);
    }

    throwIfTimedOut(signal, 'rename', from);
    const onDropbox = source !== undefined && !(sourceDirty !== undefined && sourceDirty.baseRev === undefined);
    if (onDropbox) {
      if (target !== undefined) await this.#delete(to, target);
      const result = await client.rpc<{ metadata: Metadata }>('files/move_v2', {
        from_path: this.#dropboxPath(from),
        to_path: this.#dropboxPath(to),
        autorename: false,
      });
      cache.applyChanges([deletedEntry(this.#dropboxPath(from)), result.metadata]);
      const moved = result.metadata;
      if (sourceDirty !== undefined && moved['.tag'] === 'file' && sourceDirty.baseRev === source.rev) {
        sourceDirty.baseRev = moved.rev;
      }
    } else if (sourceDirty !== undefined && target?.kind === 'file') {
      // The spooled file's commit replaces the target's rev in one step, with no delete.
      sourceDirty.baseRev = target.rev;
    }
    if (targetDirty !== undefined) files.unlink(to);
    await files.move(from, to);
  }

  // libfuse renames a file that is unlinked while open to `.fuse_hidden...` and unlinks that
  // name at its last close. For Dropbox this is the unlink: the file goes now, and the open
  // handles keep its spool under the hidden name, so that nothing uploads it.
  async #hide(from: string, to: string): Promise<void> {
    const node = await this.#find(from);
    const dirty = this.#options.files.get(from);
    if (node === undefined && dirty === undefined) throw new FsError(Errno.ENOENT, `${from} does not exist`);
    if (node?.kind === 'dir') return this.#move(from, to);
    if (node !== undefined && !(dirty !== undefined && dirty.baseRev === undefined)) await this.#delete(from, node);
    await this.#options.files.hide(from, to);
  }

  async #delete(path: string, node: Node): Promise<void> {
    const dropboxPath = this.#dropboxPath(path);
    const arg = node.kind === 'file' && node.rev ? { path: dropboxPath, parent_rev: node.rev } : { path: dropboxPath };
    await this.#options.client.rpc('files/delete_v2', arg);
    this.#options.cache.applyChanges([deletedEntry(dropboxPath)]);
  }

  // Asks Dropbox itself, not the cache: delete_v2 removes a folder with everything in it, so a
  // file added elsewhere a moment ago must stop the rmdir.
  async #requireEmpty(path: string): Promise<void> {
    if (this.#options.files.hasAnyUnder(path)) throw new FsError(Errno.ENOTEMPTY, `${path} is not empty`);
    const page = await this.#options.client.rpc<ListFolderResult>('files/list_folder', {
      path: this.#dropboxPath(path),
      limit: 1,
    });
    if (page.entries.length > 0 || page.has_more) throw new FsError(Errno.ENOTEMPTY, `${path} is not empty`);
  }

  async #parentFolder(path: string): Promise<void> {
    const { parent } = splitPath(path);
    const node = await this.#options.cache.lookup(parent);
    if (node.kind !== 'dir') throw new FsError(Errno.ENOTDIR, `${parent} is not a folder`);
  }

  async #find(path: string): Promise<Node | undefined> {
    try {
      return await this.#options.cache.lookup(path);
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.ENOENT) return undefined;
      throw err;
    }
  }

  #dropboxPath(path: string): string {
    return toDropboxPath(this.#options.cache.rootPath, path);
  }
}

// A name change that waited past its op deadline was reported failed, so it must not be made.
function throwIfTimedOut(signal: Deadline | undefined, op: string, path: string): void {
  if (signal?.aborted) throw new FsError(Errno.EIO, `${path}: the ${op} timed out and was not made`);
}

function deletedEntry(dropboxPath: string): Metadata {
  const name = dropboxPath.slice(dropboxPath.lastIndexOf('/') + 1);
  return { '.tag': 'deleted', name, path_lower: dropboxPath.toLowerCase(), path_display: dropboxPath };
}
