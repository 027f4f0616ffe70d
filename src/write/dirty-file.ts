/**
 * A file being written through the mount: its bytes in a spool file, its size and mtime, the
 * rev it replaces, and the upload that commits it. One DirtyFile serves every handle open on
 * its path, so that two handles on one file see each other's writes.
 *
 * Invariants: the remote file is only ever replaced by a complete commit of the spool (a
 * session's bytes become visible only at `finish`). A commit never runs while a write changes
 * the spool, so a commit contains the content as it was at one moment. `generation` counts
 * changes; the file is dirty while it differs from `committedGeneration`.
 */
import type { Deadline } from '../fs/deadline.js';
import type { Logger } from '../log/logger.js';
import type { FileMetadata } from '../dropbox/types.js';
import type { DropboxClient } from '../dropbox/client.js';
import { Errno, FsError, describeError } from '../fs/errno.js';
import type { SpoolFile, SpoolRecord, SpoolStore } from './spool-store.js';
import { SESSION_CHUNK_BYTES, UploadSession, uploadFile, type CommitTarget, type UploaderOptions } from './upload.js';
import { blockDigestsOffThread } from '../dropbox/content-hash.js';

export interface DirtyFileOptions {
  store: SpoolStore;
  uploader: UploaderOptions;
  client: DropboxClient;
  log: Logger;
}

/** The rev on Dropbox a file starts from; a new file has none. */
export interface BaseContent {
  rev: string;
  size: number;
  mtimeMs: number;
}

/** The upload session fed while a new file is written front to back. */
interface Stream {
  session: UploadSession;
  /** Bytes handed to the session so far (sent or queued). */
  queuedEnd: number;
  /** The chain of appends. It never rejects: a failure is stored in `failed`. */
  appends: Promise<void>;
  /** The chain as it was before the last append was queued. */
  previous: Promise<void>;
  failed?: unknown;
}

export class DirtyFile {
  readonly #options: DirtyFileOptions;
  /** Mount path, which changes when the file is renamed. */
  path: string;
  /** Dropbox path the commit writes to, which changes with `path`. */
  dropboxPath: string;
  /** The rev on Dropbox that a commit replaces, or undefined while the file is not on Dropbox. */
  baseRev: string | undefined;
  #base: BaseContent | undefined;
  #spool: SpoolFile | undefined;
  #spoolReady: Promise<SpoolFile> | undefined;
  size: number;
  mtimeMs: number;
  generation = 0;
  committedGeneration = 0;
  openCount = 0;
  unlinked = false;
  /** The error of the last commit, until a commit succeeds. */
  lastError: unknown;
  /** The first write or truncate that failed; the content is then never committed. */
  failedChange: unknown;
  #stream: Stream | undefined;
  /** True while every byte was written at the end of the file, starting from empty. */
  #appendOnly: boolean;
  /** The running commit or write. Changes wait for commits, and commits for changes. */
  #busy: Promise<unknown> = Promise.resolve();
  /** Set once the spool has the base rev's bytes, or was created empty. */
  #spoolFilled = false;
  /** Exclusive tasks queued or running; `writeNow` only writes when there are none. */
  #running = 0;
  #recordState: SpoolRecord['state'] | undefined;

  constructor(options: DirtyFileOptions, path: string, dropboxPath: string, base: BaseContent | undefined) {
    this.#options = options;
    this.path = path;
    this.dropboxPath = dropboxPath;
    this.#base = base;
    this.baseRev = base?.rev;
    this.size = base?.size ?? 0;
    this.mtimeMs = base?.mtimeMs ?? Date.now();
    this.#appendOnly = base === undefined;
  }

  /** A file recovered from the spool after a restart: closed content waiting for its commit. */
  static recovered(options: DirtyFileOptions, path: string, spool: SpoolFile, record: SpoolRecord): DirtyFile {
    const file = new DirtyFile(options, path, record.dropboxPath, undefined);
    file.baseRev = record.baseRev;
    file.#spool = spool;
    file.#spoolReady = Promise.resolve(spool);
    file.#spoolFilled = true;
    file.#appendOnly = false;
    file.size = spool.size;
    file.mtimeMs = record.mtimeMs;
    file.generation = 1;
    file.#recordState = 'closed';
    return file;
  }

  get dirty(): boolean {
    return this.generation !== this.committedGeneration && !this.unlinked;
  }

  /** True when reads must come from the spool, because the content differs from the base rev. */
  get hasLocalContent(): boolean {
    return this.#spool !== undefined || this.#base === undefined;
  }

  /** Marks a new file dirty, so that closing it commits it even when nothing was written. */
  markCreated(): void {
    this.generation++;
  }

  /**
   * Writes `data` into the spool at once, with a synchronous write, when no commit, download
   * or earlier write is running. Returns false, having done nothing, when one is: then the
   * caller copies the bytes and calls `write`.
   * @throws FsError ENOSPC when the spool is full.
   */
  writeNow(data: Buffer, position: number): boolean {
    const spool = this.#spool;
    if (this.#running > 0 || spool === undefined || !this.#spoolFilled) return false;
    if (this.#appendOnly && position !== this.size) this.#stopStreaming();
    try {
      spool.writeSync(data, position, this.path);
    } catch (err) {
      this.failedChange ??= err;
      throw err;
    }
    this.#written(data.length, position);
    return true;
  }

  /**
   * Writes `data` into the spool after the running commit, download or write. Does nothing
   * and throws EIO when `signal` has aborted by then: the op has already replied EIO, so the
   * program believes the write failed.
   */
  async write(data: Buffer, position: number, signal?: Deadline): Promise<void> {
    await this.#change(signal, async () => {
      const spool = await this.#ensureSpool();
      if (signal?.aborted) throw new FsError(Errno.EIO, `${this.path}: the write timed out and was not made`);
      if (this.#appendOnly && position !== this.size) this.#stopStreaming();
      await spool.write(data, position, this.path);
      this.#written(data.length, position);
    });
  }

  #written(length: number, position: number): void {
    this.size = Math.max(this.size, position + length);
    this.mtimeMs = Date.now();
    this.#changed();
    this.#feedStream();
  }

  // Runs a change of content in turn. A change that fails, or comes too late, leaves the spool
  // with content the program did not mean to write, so the file is never committed after it.
  #change(signal: Deadline | undefined, work: () => Promise<void>): Promise<void> {
    return this.#exclusive(async () => {
      if (signal?.aborted) throw new FsError(Errno.EIO, `${this.path}: the change timed out and was not made`);
      try {
        await work();
      } catch (err) {
        this.failedChange ??= err;
        throw err;
      }
    });
  }

  async truncate(size: number, signal?: Deadline): Promise<void> {
    await this.#change(signal, async () => {
      // Cutting to zero needs none of the old bytes, so it skips their download.
      if (size === 0 && this.#spool === undefined) this.#base = undefined;
      const spool = await this.#ensureSpool();
      if (signal?.aborted) throw new FsError(Errno.EIO, `${this.path}: the truncate timed out and was not made`);
      if (size !== this.size) {
        if (size === 0 && (this.#stream === undefined || this.#stream.queuedEnd === 0)) {
          this.#stopStreaming();
          this.#appendOnly = true;
        } else {
          this.#stopStreaming();
        }
        await spool.truncate(size, this.path);
        this.size = size;
        this.mtimeMs = Date.now();
      }
      this.#changed();
    });
  }

  /** Sets the mtime that the next commit sends as `client_modified`. */
  setMtime(mtimeMs: number): void {
    if (mtimeMs === this.mtimeMs) return;
    this.mtimeMs = mtimeMs;
    if (this.#spool !== undefined || this.#base === undefined) this.#changed();
  }

  /** Reads from the spool. Callers use the base rev's reader while `hasLocalContent` is false. */
  async read(position: number, length: number): Promise<Buffer> {
    const spool = await this.#ensureSpool();
    return spool.read(position, Math.min(length, Math.max(0, this.size - position)));
  }

  /**
   * Commits the content to Dropbox unless it is already there, and returns the new metadata,
   * or undefined when there was nothing to commit.
   * @throws the errors of uploadFile, and FsError ENOSPC from the spool.
   */
  commit(): Promise<FileMetadata | undefined> {
    return this.#exclusive(async () => {
      if (!this.dirty) return undefined;
      if (this.failedChange !== undefined) {
        const errno = this.failedChange instanceof FsError ? this.failedChange.errno : Errno.EIO;
        throw new FsError(errno, `${this.path}: an earlier write or truncate failed, so the file is not uploaded and Dropbox keeps its previous content`);
      }
      const generation = this.generation;
      const spool = await this.#ensureSpool();
      await this.#saveRecord('closed');
      try {
        const metadata = await this.#upload(spool, { dropboxPath: this.dropboxPath, baseRev: this.baseRev, mtimeMs: this.mtimeMs });
        this.lastError = undefined;
        this.#committed(metadata, generation);
        return metadata;
      } catch (err) {
        this.lastError = err;
        throw err;
      }
    });
  }

  /**
   * Commits the content as a new file at `dropboxPath`, for a conflicted copy: the file's own
   * path keeps the remote version, and this file counts as committed.
   */
  commitCopy(dropboxPath: string): Promise<FileMetadata> {
    return this.#exclusive(async () => {
      const generation = this.generation;
      const spool = await this.#ensureSpool();
      const target: CommitTarget = { dropboxPath, mtimeMs: this.mtimeMs, autorename: true };
      const metadata = await uploadFile(this.#options.uploader, spool, this.size, target);
      this.lastError = undefined;
      // Later changes through open handles update the copy, not the other edit at the path.
      this.dropboxPath = metadata.path_display ?? dropboxPath;
      this.baseRev = metadata.rev;
      this.#committed(metadata, generation);
      return metadata;
    });
  }

  /** Saves the record again after a rename or a change of mtime, so that a restart uses it. */
  async saveRecord(): Promise<void> {
    if (this.#recordState !== undefined) await this.#saveRecord(this.#recordState);
  }

  /** Drops the record, so that a restart never commits an unlinked file. */
  async forget(): Promise<void> {
    this.#recordState = undefined;
    await this.#spool?.clearRecord();
  }

  /** Waits for the running write or commit, whatever its outcome. */
  async settled(): Promise<void> {
    await this.#busy.catch(() => undefined);
  }

  /**
   * Moves the content to the cache's `unfinished` folder, for content Dropbox will never take
   * (a name it refuses), and returns where it is kept. The DirtyFile must not be used afterwards.
   */
  async setAside(): Promise<string | undefined> {
    this.#stopStreaming();
    await this.#busy.catch(() => undefined);
    const record: SpoolRecord = { dropboxPath: this.dropboxPath, baseRev: this.baseRev, mtimeMs: this.mtimeMs, state: 'closed' };
    return this.#spool?.setAside(record);
  }

  /** Deletes the spool file; the DirtyFile must not be used afterwards. */
  async discard(): Promise<void> {
    this.#stopStreaming();
    await this.#busy.catch(() => undefined);
    await this.#spool?.remove();
  }

  async #upload(spool: SpoolFile, target: CommitTarget): Promise<FileMetadata> {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#appendOnly = false;
    if (stream !== undefined) {
      await stream.appends;
      if (stream.failed === undefined) return uploadFile(this.#options.uploader, spool, this.size, target, stream.session);
      this.#options.log.info(
        { path: this.path, err: describeError(stream.failed) },
        'streaming upload failed; uploading the whole file again',
      );
    }
    return uploadFile(this.#options.uploader, spool, this.size, target);
  }

  #committed(metadata: FileMetadata, generation: number): void {
    this.baseRev = metadata.rev;
    this.committedGeneration = generation;
    if (!this.dirty) {
      this.#recordState = undefined;
      void this.#spool?.clearRecord();
    }
  }

  // A change of content or mtime. The record's state is `open` until the next commit closes it.
  #changed(): void {
    this.generation++;
    if (this.#recordState !== 'open' && !this.unlinked) void this.#saveRecord('open');
  }

  async #saveRecord(state: SpoolRecord['state']): Promise<void> {
    this.#recordState = state;
    const record: SpoolRecord = { dropboxPath: this.dropboxPath, baseRev: this.baseRev, mtimeMs: this.mtimeMs, state };
    try {
      await this.#spool?.saveRecord(record);
    } catch (err) {
      this.#options.log.warn({ path: this.path, err: describeError(err) }, 'spool record not saved');
    }
  }

  // Starts or extends the session of an append-only file once a whole chunk is spooled. Each
  // append reads its chunk from the spool when it runs, so a fast writer costs disk, not memory.
  #feedStream(): void {
    if (!this.#appendOnly) return;
    if (this.#stream === undefined) {
      if (this.size < 2 * SESSION_CHUNK_BYTES) return;
      this.#stream = {
        session: new UploadSession(this.#options.uploader),
        queuedEnd: 0,
        appends: Promise.resolve(),
        previous: Promise.resolve(),
      };
    }
    const stream = this.#stream;
    const spool = this.#spool;
    if (spool === undefined) return;
    // One chunk stays unsent, so that the commit's finish always carries bytes.
    while (this.size - stream.queuedEnd > 2 * SESSION_CHUNK_BYTES) {
      const start = stream.queuedEnd;
      stream.queuedEnd += SESSION_CHUNK_BYTES;
      // Each chunk is read and hashed while the one before it is sent, once the one before
      // that is sent, so at most two chunks are in memory per file.
      const prepared = stream.previous.then(async () => {
        const chunk = await spool.read(start, SESSION_CHUNK_BYTES);
        return { chunk, digests: await blockDigestsOffThread(chunk) };
      });
      prepared.catch(() => undefined);
      const sent = Promise.all([stream.appends, prepared]).then(async ([, next]) => {
        if (stream.failed !== undefined || this.#stream !== stream) return;
        await stream.session.append(next.chunk, next.digests);
      });
      stream.previous = stream.appends;
      stream.appends = sent.catch((err: unknown) => {
        stream.failed ??= err;
      });
    }
  }

  #stopStreaming(): void {
    this.#appendOnly = false;
    if (this.#stream !== undefined) this.#stream.failed ??= new Error('the file was not written front to back');
    this.#stream = undefined;
  }

  #ensureSpool(): Promise<SpoolFile> {
    this.#spoolReady ??= this.#createSpool();
    return this.#spoolReady;
  }

  async #createSpool(): Promise<SpoolFile> {
    const spool = await this.#options.store.create();
    this.#spool = spool;
    try {
      if (this.#base !== undefined && this.#base.size > 0) await this.#downloadBase(spool, this.#base);
      this.#spoolFilled = true;
    } catch (err) {
      this.#spool = undefined;
      this.#spoolReady = undefined;
      await spool.remove();
      throw err;
    }
    return spool;
  }

  // Copies the base rev into the spool before the first change, so that the commit uploads the
  // whole file with the change in place.
  async #downloadBase(spool: SpoolFile, base: BaseContent): Promise<void> {
    const download = await this.#options.client.download(`rev:${base.rev}`);
    let position = 0;
    for await (const chunk of download.body as AsyncIterable<Buffer>) {
      await spool.write(chunk, position, this.path);
      position += chunk.length;
    }
    if (position !== base.size) {
      throw new FsError(Errno.EIO, `${this.path}: rev ${base.rev} downloaded ${position} of ${base.size} bytes`);
    }
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.#running++;
    const result = this.#busy.then(work, work).finally(() => this.#running--);
    this.#busy = result.catch(() => undefined);
    return result;
  }
}
