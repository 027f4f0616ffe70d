/**
 * Dropbox content hash: the file is split into 4 MiB blocks (the last may be shorter), each
 * block is hashed with SHA-256, and the lowercase hex SHA-256 of the concatenated raw block
 * digests is the result. An empty file has no blocks, so its hash is SHA-256 of empty input.
 * Source: www.dropbox.com/developers/reference/content-hash.
 */

import { createHash, webcrypto, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

export const CONTENT_HASH_BLOCK_BYTES = 4 * 1024 * 1024;

// 1 MiB reads keep syscalls few for large files without a large allocation per small file.
const FILE_READ_BYTES = 1024 * 1024;

/** Incremental content hasher: call `update` with consecutive chunks, then `digest` once. */
export class ContentHasher {
  private readonly overall: Hash = createHash('sha256');
  private block: Hash = createHash('sha256');
  private blockBytes = 0;
  private finished = false;

  /** Adds the next chunk of the file. Throws after `digest` has been called. */
  update(chunk: Uint8Array): this {
    if (this.finished) {
      throw new Error('ContentHasher.update called after digest');
    }
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(CONTENT_HASH_BLOCK_BYTES - this.blockBytes, chunk.length - offset);
      this.block.update(chunk.subarray(offset, offset + take));
      this.blockBytes += take;
      offset += take;
      if (this.blockBytes === CONTENT_HASH_BLOCK_BYTES) {
        this.closeBlock();
      }
    }
    return this;
  }

  /** Returns the 64-character lowercase hex hash. The hasher cannot be used afterwards. */
  digest(): string {
    if (this.finished) {
      throw new Error('ContentHasher.digest called twice');
    }
    if (this.blockBytes > 0) {
      this.closeBlock();
    }
    this.finished = true;
    return this.overall.digest('hex');
  }

  private closeBlock(): void {
    this.overall.update(this.block.digest());
    this.block = createHash('sha256');
    this.blockBytes = 0;
  }
}

/** Computes the content hash of an in-memory buffer. */
export function contentHashOf(data: Uint8Array): string {
  return new ContentHasher().update(data).digest();
}

/**
 * Computes the content hash of the file at `path` by streaming it in 1 MiB reads.
 * Rejects with the fs error (ENOENT, EISDIR, ...) or an AbortError when `signal` fires.
 */
export async function contentHashOfFile(
  path: string,
  options: { signal?: AbortSignal } = {},
): Promise<string> {
  const handle = await open(path, 'r');
  try {
    return await contentHashOfHandle(handle, options);
  } finally {
    await handle.close();
  }
}

/**
 * Computes the content hash of an open file from offset 0 to its end, with positional
 * reads, so the handle's file position is left alone. The caller keeps ownership of `handle`.
 */
export async function contentHashOfHandle(
  handle: FileHandle,
  options: { signal?: AbortSignal } = {},
): Promise<string> {
  const hasher = new ContentHasher();
  const buffer = Buffer.allocUnsafe(FILE_READ_BYTES);
  let position = 0;
  while (true) {
    options.signal?.throwIfAborted();
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) {
      return hasher.digest();
    }
    // Hash.update consumes the bytes synchronously, so reusing the buffer is safe.
    hasher.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** Returns the SHA-256 digest of each 4 MiB block of `data` (the last may be shorter). */
export function blockDigests(data: Uint8Array): Buffer[] {
  const digests: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += CONTENT_HASH_BLOCK_BYTES) {
    digests.push(createHash('sha256').update(data.subarray(offset, offset + CONTENT_HASH_BLOCK_BYTES)).digest());
  }
  return digests;
}

/**
 * Returns the content hash made of block digests, in file order. The content of consecutive
 * chunks that each hold whole 4 MiB blocks hashes to the digests of all their blocks, so an
 * upload hashes each byte once for both its chunks and its whole file.
 */
export function hashOfDigests(digests: readonly Uint8Array[]): string {
  const overall = createHash('sha256');
  for (const digest of digests) overall.update(digest);
  return overall.digest('hex');
}

/**
 * Returns the same digests as `blockDigests`, computed by WebCrypto on libuv's thread pool, so
 * that hashing an upload chunk does not stall the event loop that serves filesystem calls.
 */
export async function blockDigestsOffThread(data: Uint8Array): Promise<Buffer[]> {
  const blocks: Promise<ArrayBuffer>[] = [];
  for (let offset = 0; offset < data.length; offset += CONTENT_HASH_BLOCK_BYTES) {
    blocks.push(webcrypto.subtle.digest('SHA-256', data.subarray(offset, offset + CONTENT_HASH_BLOCK_BYTES)));
  }
  return (await Promise.all(blocks)).map((digest) => Buffer.from(digest));
}
