/**
 * files/download. The response streams straight from an open file descriptor: the
 * metadata in `Dropbox-API-Result` comes from fstat on that descriptor, so the header and
 * the bytes describe the same file even if the path is replaced meanwhile. The descriptor is
 * closed when the stream ends, fails or the client disconnects.
 */

import { constants, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { toHeaderSafeJson } from '../dropbox/header-json.js';
import { parseByteRange } from './byte-range.js';
import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import { pathLookupError, plainError } from './errors.js';
import { streamBody, type Exchange } from './exchange.js';
import { isSameVersion } from './hash-cache.js';
import { lookupEntry } from './lookup.js';
import { fileMetadata, revOf, type FileMetadata } from './metadata.js';
import { parsePath } from './paths.js';
import type { DownloadRoute } from './route-table.js';

const DOWNLOAD = 'files/download';

// 1 MiB reads need 16 times fewer read calls per GiB than the 64 KiB default. Over loopback to
// curl both sizes reached 1.3-1.6 GB/s (2-core VM), so the disk or client limits, not this.
const READ_CHUNK_BYTES = 1024 * 1024;

export const downloadRoute: DownloadRoute = {
  name: DOWNLOAD,
  style: 'download',
  auth: 'user',
  // `rev` is deprecated in favour of a `rev:` path; it is accepted and must match.
  arg: { path: { type: 'string', required: true }, rev: { type: 'string' } },
  async handle(context: EmulatorContext, exchange: Exchange, arg: { path: string; rev?: string }) {
    const ref = parsePath(arg.path, {
      route: DOWNLOAD,
      pattern: 'readPath',
      rootNamespaceId: context.account.rootNamespaceId,
    });
    const entry = await lookupEntry(context, ref);
    if (entry === null) {
      throw pathLookupError('not_found');
    }
    if (entry.kind !== 'file') {
      throw pathLookupError('not_file');
    }
    const handle = await openFile(entry);
    let body: { start: number; end: number } | null = null;
    try {
      const stat = await handle.stat({ bigint: true });
      if (arg.rev !== undefined && arg.rev !== revOf(stat)) {
        throw pathLookupError('not_found');
      }
      const metadata = await metadataOf(context, entry, handle, stat);
      body = writeHead(exchange, metadata, Number(stat.size));
    } finally {
      if (body === null) {
        await handle.close();
      }
    }
    if (body !== null) {
      // Reading to `end` and no further keeps the body at the promised length even when the
      // file grows meanwhile. autoClose closes the descriptor on end, error and destroy.
      const stream = handle.createReadStream({
        ...body,
        highWaterMark: READ_CHUNK_BYTES,
        autoClose: true,
      });
      await streamBody(exchange, stream);
    }
  },
};

async function openFile(entry: Entry): Promise<FileHandle> {
  try {
    // O_NOFOLLOW: a symlink swapped in after the lookup must not be followed out of the folder.
    return await open(entry.diskPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') {
      throw pathLookupError('not_found');
    }
    throw error;
  }
}

/**
 * Builds the FileMetadata for the open file. The hash cache reads by path, so when the path
 * now contains another version than the descriptor, the hash comes from the descriptor instead.
 */
async function metadataOf(
  context: EmulatorContext,
  entry: Entry,
  handle: FileHandle,
  stat: BigIntStats,
): Promise<FileMetadata> {
  const cached = context.hashes.peek(stat);
  if (cached !== undefined) {
    return fileMetadata(entry, stat, cached);
  }
  const version = await context.hashes.hashOf(entry.diskPath, stat);
  if (isSameVersion(version.stat, stat)) {
    return fileMetadata(entry, stat, version.contentHash);
  }
  return fileMetadata(entry, stat, await context.hashes.hashHandle(handle, stat));
}

/**
 * Sends status and headers for the request's Range. Returns the inclusive byte range of the
 * body still to stream, or null when the response is already complete (304, an empty file).
 * Throws the 416 error for an unsatisfiable range.
 */
function writeHead(
  exchange: Exchange,
  metadata: FileMetadata,
  size: number,
): { start: number; end: number } | null {
  const { req, res } = exchange;
  const etag = `W/"${metadata.rev}"`;
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { etag });
    res.end();
    return null;
  }
  const range = parseByteRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    throw plainError(416, 'Requested range not satisfiable.', { 'Content-Range': `bytes */${size}` });
  }
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Dropbox-API-Result': toHeaderSafeJson(metadata),
    etag,
    'original-content-length': size,
    'Accept-Ranges': 'bytes',
  };
  if (range.kind === 'whole') {
    headers['Content-Length'] = size;
    res.writeHead(200, headers);
    if (size === 0) {
      res.end();
      return null;
    }
    return { start: 0, end: size - 1 };
  }
  headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  headers['Content-Length'] = range.end - range.start + 1;
  res.writeHead(206, headers);
  return { start: range.start, end: range.end };
}
