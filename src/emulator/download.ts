/**
 * files/download. The response streams straight from an open file descriptor: the
 * metadata in `Dropbox-API-Result` comes from fstat on that descriptor, so the header and
 * the bytes describe the same file even if the path is replaced meanwhile. The descriptor is
 * closed when the stream ends, fails or the client disconnects. A `rev:` path of an earlier
 * revision streams from the revision store. Paper documents (not downloadable) answer
 * `unsupported_file`, as Dropbox does; files/export serves them.
 */

import { constants, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { toHeaderSafeJson } from '../dropbox/header-json.js';
import { contentArgSource } from './args.js';
import { parseByteRange } from './byte-range.js';
import type { EmulatorContext } from './context.js';
import type { Entry } from './data-folder.js';
import { pathLookupError, plainError, routeError } from './errors.js';
import { streamBody, type Exchange } from './exchange.js';
import { sendFileBody } from './file-body.js';
import { isSameVersion } from './hash-cache.js';
import { lookupEntry, lookupRevision } from './lookup.js';
import { fileMetadata, type FileMetadata } from './metadata.js';
import { parsePath } from './paths.js';
import type { DownloadRoute } from './route-table.js';

const DOWNLOAD = 'files/download';

// Chunk size of the shaped path's read stream; 1 MiB reads need 16 times fewer read calls per
// GiB than the 64 KiB default. The unshaped path reads through file-body.ts.
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
      argument: `${contentArgSource(exchange.req.headers)}: path`,
    });
    const revision = ref.kind === 'rev' ? lookupRevision(context, ref.rev) : undefined;
    if (revision !== undefined) {
      const handle = await openFile(context.state.account.revisions.fileOf(revision.rev));
      await serveOpenFile(context, exchange, handle, async (stat) =>
        fileMetadata(revision.pathLower, revision.record, revision.record.contentHash ?? (await context.hashes.hashHandle(handle, stat))));
      return;
    }
    const entry = await lookupEntry(context, ref);
    if (entry === null) {
      throw pathLookupError('not_found');
    }
    if (entry.kind !== 'file') {
      throw pathLookupError('not_file');
    }
    const handle = await openFile(entry.diskPath);
    await serveOpenFile(context, exchange, handle, async (stat) => {
      const metadata = await metadataOf(context, entry, handle, stat);
      if (arg.rev !== undefined && arg.rev !== metadata.rev) {
        throw pathLookupError('not_found');
      }
      if (!metadata.is_downloadable) {
        throw routeError({ '.tag': 'unsupported_file' });
      }
      return metadata;
    });
  },
};

/**
 * Sends the open file with the metadata `describe` builds from its fstat; closes the
 * descriptor when the response is complete or `describe` throws.
 */
export async function serveOpenFile(
  _context: EmulatorContext,
  exchange: Exchange,
  handle: FileHandle,
  describe: (stat: BigIntStats) => Promise<FileMetadata>,
  resultHeader: (metadata: FileMetadata) => unknown = (metadata) => metadata,
): Promise<void> {
  let body: { start: number; end: number } | null = null;
  try {
    const stat = await handle.stat({ bigint: true });
    const metadata = await describe(stat);
    body = writeHead(exchange, metadata, resultHeader(metadata), Number(stat.size));
  } finally {
    if (body === null) {
      await handle.close();
    }
  }
  if (body === null) {
    return;
  }
  // Reading to `end` and no further keeps the body at the promised length even when the
  // file grows meanwhile.
  if (exchange.shaping?.bucket == null && exchange.bodyFault === undefined) {
    await sendFileBody(exchange, handle, body.start, body.end);
    return;
  }
  // autoClose closes the descriptor on end, error and destroy.
  const stream = handle.createReadStream({ ...body, highWaterMark: READ_CHUNK_BYTES, autoClose: true });
  await streamBody(exchange, stream);
}

async function openFile(diskPath: string): Promise<FileHandle> {
  try {
    // O_NOFOLLOW: a symlink swapped in after the lookup must not be followed out of the folder.
    return await open(diskPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') {
      throw pathLookupError('not_found');
    }
    throw error;
  }
}

/**
 * Builds the FileMetadata for the open file, reconciling the catalog with its fstat. The hash
 * cache reads by path, so when the path now contains another version than the descriptor,
 * the hash comes from the descriptor instead.
 */
async function metadataOf(
  context: EmulatorContext,
  entry: Entry,
  handle: FileHandle,
  stat: BigIntStats,
): Promise<FileMetadata> {
  const record = await context.state.account.recordOf({ ...entry, stat });
  const cached = record.contentHash ?? context.hashes.peek(stat);
  if (cached !== undefined) {
    return fileMetadata(entry.pathLower, record, cached);
  }
  const version = await context.hashes.hashOf(entry.diskPath, stat);
  if (isSameVersion(version.stat, stat)) {
    return fileMetadata(entry.pathLower, record, version.contentHash);
  }
  return fileMetadata(entry.pathLower, record, await context.hashes.hashHandle(handle, stat));
}

/**
 * Sends status and headers for the request's Range. Returns the inclusive byte range of the
 * body still to stream, or null when the response is already complete (304, an empty file).
 * Throws the 416 error for an unsatisfiable range.
 */
function writeHead(
  exchange: Exchange,
  metadata: FileMetadata,
  result: unknown,
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
    'Dropbox-API-Result': toHeaderSafeJson(result),
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
