/**
 * Uploads of spooled bytes: one `files/upload` for a small file, an upload session for a larger
 * one. Every call sends the `content_hash` of its own bytes, and the hash of the whole content
 * is compared with the one Dropbox reports after the commit, so a corrupted upload is an error
 * and never a silently wrong file.
 *
 * Commits (`files/upload` and `upload_session/finish`) pass through one CommitGate: Dropbox
 * takes a lock on the namespace for each commit, and parallel commits to one namespace fail with
 * `too_many_write_operations`. Session appends carry no commit and run in parallel.
 */
import type { DropboxClient } from '../dropbox/client.js';
import { ApiError } from '../dropbox/errors.js';
import { blockDigestsOffThread, hashOfDigests } from '../dropbox/content-hash.js';
import type { FileMetadata, Metadata } from '../dropbox/types.js';
import type { Logger } from '../log/logger.js';
import { Errno, FsError } from '../fs/errno.js';

// Session chunks must be multiples of 4 MiB (Dropbox's rule for all but the last). 16 MiB keeps
// the calls for 1 GiB at 64 with one 16 MiB buffer per upload in flight.
export const SESSION_CHUNK_BYTES = 16 * 1024 * 1024;

// How often a commit refused with `too_many_write_operations` is tried, and the first wait.
const WRITE_CONTENTION_ATTEMPTS = 6;
const WRITE_CONTENTION_BASE_MS = 500;

/** A commit's target and mode: the CommitInfo of `files/upload` and `finish`. */
export interface CommitTarget {
  dropboxPath: string;
  /** Replace this rev (`update` mode); undefined adds a new file (`add` mode). */
  baseRev?: string;
  mtimeMs: number;
  /** Let Dropbox pick a free name on conflict, for conflicted copies. */
  autorename?: boolean;
}

/** A source of bytes to upload: a spool file. */
export interface ByteSource {
  read(position: number, length: number): Promise<Buffer>;
}

/** Serializes commits, so that at most one has the namespace lock at a time. */
export class CommitGate {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(commit: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(commit, commit);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

export interface UploaderOptions {
  client: DropboxClient;
  gate: CommitGate;
  log: Logger;
}

/**
 * An upload session whose bytes arrive in order. Appends retry on their own (the client's retry
 * policy). After a cut connection the server may or may not have the bytes, and its
 * `incorrect_offset` error shows which.
 */
export class UploadSession {
  readonly #options: UploaderOptions;
  /** Block digests of the bytes confirmed so far. Every chunk but the last contains whole blocks. */
  readonly #digests: Buffer[] = [];
  #sessionId: string | undefined;
  #offset = 0;

  constructor(options: UploaderOptions) {
    this.#options = options;
  }

  /** Bytes Dropbox has confirmed. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Sends the next chunk, a multiple of 4 MiB unless it is the last. `blockDigests` are the
   * chunk's block digests when the caller computed them ahead.
   */
  async append(chunk: Buffer, blockDigests?: Buffer[]): Promise<void> {
    const { client } = this.#options;
    const digests = blockDigests ?? (await blockDigestsOffThread(chunk));
    const contentHash = hashOfDigests(digests);
    if (this.#sessionId === undefined) {
      const started = await client.upload<{ session_id: string }>(
        'files/upload_session/start',
        { close: false, content_hash: contentHash },
        chunk,
      );
      this.#sessionId = started.session_id;
    } else {
      const cursor = { session_id: this.#sessionId, offset: this.#offset };
      try {
        await client.upload('files/upload_session/append_v2', { cursor, close: false, content_hash: contentHash }, chunk);
      } catch (err) {
        // A retried append whose first attempt arrived: Dropbox already has these bytes.
        if (correctOffsetOf(err) !== this.#offset + chunk.length) throw err;
      }
    }
    this.#digests.push(...digests);
    this.#offset += chunk.length;
  }

  /**
   * Sends the last bytes and commits. Returns the new file's metadata.
   * @throws ApiError (conflicts, quota), UnavailableError, FsError EIO on a hash mismatch.
   */
  async finish(tail: Buffer, target: CommitTarget): Promise<FileMetadata> {
    if (this.#sessionId === undefined) await this.append(Buffer.alloc(0));
    const { client, gate } = this.#options;
    const cursor = { session_id: this.#sessionId, offset: this.#offset };
    const tailDigests = await blockDigestsOffThread(tail);
    const expected = hashOfDigests([...this.#digests, ...tailDigests]);
    const arg = { cursor, commit: commitInfo(target), content_hash: hashOfDigests(tailDigests) };
    const metadata = await withWriteContention(this.#options.log, target.dropboxPath, () =>
      gate.run(() => client.upload<FileMetadata>('files/upload_session/finish', arg, tail)),
    ).catch((err: unknown) => committedAnyway(this.#options, err, target, expected));
    checkHash(metadata, expected, target.dropboxPath);
    return metadata;
  }
}

/**
 * Uploads `size` bytes of `source` and commits them to `target`: one `files/upload` up to
 * SESSION_CHUNK_BYTES, a session above. `session`, when given, already contains the first
 * `session.offset` bytes.
 * @throws the errors of UploadSession.finish.
 */
export async function uploadFile(
  options: UploaderOptions,
  source: ByteSource,
  size: number,
  target: CommitTarget,
  session?: UploadSession,
): Promise<FileMetadata> {
  if (session === undefined && size <= SESSION_CHUNK_BYTES) {
    const body = await source.read(0, size);
    const expected = hashOfDigests(await blockDigestsOffThread(body));
    const arg = { ...commitInfo(target), content_hash: expected };
    const metadata = await withWriteContention(options.log, target.dropboxPath, () =>
      options.gate.run(() => options.client.upload<FileMetadata>('files/upload', arg, body)),
    );
    checkHash(metadata, expected, target.dropboxPath);
    return metadata;
  }
  const active = session ?? new UploadSession(options);
  // Each chunk is read and hashed while the one before it is sent: two chunks in memory at most.
  const prepare = (start: number) => {
    if (size - start <= SESSION_CHUNK_BYTES) return undefined;
    const prepared = source.read(start, SESSION_CHUNK_BYTES).then(async (chunk) => ({
      chunk,
      digests: await blockDigestsOffThread(chunk),
    }));
    // Marks a failure as handled while a send runs; the loop still awaits it and throws.
    prepared.catch(() => undefined);
    return prepared;
  };
  let next = prepare(active.offset);
  while (next !== undefined) {
    const { chunk, digests } = await next;
    next = prepare(active.offset + chunk.length);
    await active.append(chunk, digests);
  }
  return active.finish(await source.read(active.offset, size - active.offset), target);
}

function commitInfo(target: CommitTarget): Record<string, unknown> {
  return {
    path: target.dropboxPath,
    mode: target.baseRev === undefined ? 'add' : { '.tag': 'update', update: target.baseRev },
    autorename: target.autorename ?? false,
    client_modified: dropboxTimestamp(target.mtimeMs),
    mute: false,
    strict_conflict: false,
  };
}

/** Dropbox timestamps are UTC with whole seconds; the fraction is dropped. */
export function dropboxTimestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function checkHash(metadata: FileMetadata, expected: string, dropboxPath: string): void {
  if (metadata.content_hash !== undefined && metadata.content_hash !== expected) {
    throw new FsError(
      Errno.EIO,
      `${dropboxPath}: Dropbox stored content hash ${metadata.content_hash} at rev ${metadata.rev}, ` +
        `but the bytes sent hash to ${expected}`,
    );
  }
}

// Dropbox rejects a commit with `too_many_write_operations` while another commit has the
// namespace lock, so the commit waits and tries again. This handles the 409 form; the client
// retries the 429 form.
async function withWriteContention<T>(log: Logger, path: string, commit: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await commit();
    } catch (err) {
      if (!(err instanceof ApiError && err.has('too_many_write_operations')) || attempt >= WRITE_CONTENTION_ATTEMPTS) {
        throw err;
      }
      const delayMs = WRITE_CONTENTION_BASE_MS * 2 ** (attempt - 1);
      log.debug({ path, attempt, delayMs }, 'commit rejected by write contention, retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

// A finish whose response was lost and whose retry found the session gone may have committed.
// It did when the file's current content hash is the hash of the bytes sent.
async function committedAnyway(
  options: UploaderOptions,
  err: unknown,
  target: CommitTarget,
  expected: string,
): Promise<FileMetadata> {
  if (!(err instanceof ApiError && err.has('lookup_failed'))) throw err;
  let current: Metadata;
  try {
    current = await options.client.rpc<Metadata>('files/get_metadata', { path: target.dropboxPath });
  } catch {
    throw err;
  }
  if (current['.tag'] === 'file' && current.content_hash === expected) return current;
  throw err;
}

/** Returns `correct_offset` from an `incorrect_offset` error, also when nested in `lookup_failed`. */
export function correctOffsetOf(err: unknown): number | undefined {
  if (!(err instanceof ApiError && err.has('incorrect_offset'))) return undefined;
  const union = (err.body as { error?: Record<string, unknown> } | undefined)?.error;
  const nested = union?.lookup_failed as Record<string, unknown> | undefined;
  const offset = union?.correct_offset ?? nested?.correct_offset;
  return typeof offset === 'number' ? offset : undefined;
}
