/** Upload request bodies, streamed to a file in the state folder while they are hashed. */

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
 * Appends the request body to `file` (created when missing) starting at `position`. A body
 * above the limit is drained, so the connection stays usable for the error response, and the
 * file is truncated back to `position`.
 */
export async function receiveBody(exchange: Exchange, file: string, position: number): Promise<ReceivedBody> {
  const handle = await open(file, 'a+');
  const hasher = new ContentHasher();
  let bytes = 0;
  try {
    for await (const chunk of requestChunks(exchange)) {
      bytes += chunk.length;
      if (bytes <= MAX_UPLOAD_REQUEST_BYTES) {
        hasher.update(chunk);
        await handle.write(chunk);
      }
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
