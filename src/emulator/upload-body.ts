/** Upload request bodies, streamed to a file in the state folder while they are hashed. */

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ContentHasher } from '../dropbox/content-hash.js';
import { requestChunks, type Exchange } from './exchange.js';

/** Dropbox accepts at most 150 MiB of data per upload request. */
export const MAX_UPLOAD_REQUEST_BYTES = 150 * 1024 * 1024;

export interface ReceivedBody {
  bytes: number;
  /** Content hash of this request's bytes. */
  contentHash: string;
  /** True when the body exceeded MAX_UPLOAD_REQUEST_BYTES; nothing was written then. */
  tooLarge: boolean;
}

/**
 * Writes the request body into `file` (created when missing) at `position`, after cutting
 * the file to `position`. A body above the limit is drained, so the connection stays usable
 * for the error response, and the file is truncated back to `position`. When reading fails
 * (the client left, or the cut-request-after fault) the file is truncated back as well and
 * the error is rethrown, so an unacknowledged append leaves no bytes behind.
 */
export async function receiveBody(exchange: Exchange, file: string, position: number): Promise<ReceivedBody> {
  // Positional writes, not O_APPEND, so the truncation decides where the data goes.
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT);
  const hasher = new ContentHasher();
  let bytes = 0;
  try {
    await handle.truncate(position);
    try {
      for await (const chunk of requestChunks(exchange)) {
        if (bytes + chunk.length <= MAX_UPLOAD_REQUEST_BYTES) {
          hasher.update(chunk);
          await handle.write(chunk, 0, chunk.length, position + bytes);
        }
        bytes += chunk.length;
      }
    } catch (error) {
      await handle.truncate(position);
      throw error;
    }
    const tooLarge = bytes > MAX_UPLOAD_REQUEST_BYTES;
    if (tooLarge) {
      await handle.truncate(position);
    }
    return { bytes, contentHash: hasher.digest(), tooLarge };
  } finally {
    await handle.close();
  }
}

/** Discards an upload body that will not be used, e.g. after a failed argument check. */
export async function discardBody(exchange: Exchange): Promise<void> {
  for await (const _chunk of requestChunks(exchange)) {
    // Reading to the end keeps a keep-alive connection usable.
  }
}
