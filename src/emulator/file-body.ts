/**
 * The unshaped file body of a download: bytes read with FileHandle.read into a few reused
 * buffers and written to the response, with the read of the next chunk in flight while the
 * socket takes the current one. Reusing the buffers avoids allocating (and page-faulting in)
 * fresh memory for every chunk, as a read stream does. Shaped bodies and body faults take
 * the stream path in exchange.ts instead.
 */

import type { FileHandle } from 'node:fs/promises';
import type { Exchange } from './exchange.js';

// Buffers of this size are used in turn. Over loopback to curl, sizes from 256 KiB to 4 MiB
// ran at about the same speed (2-core VM), and 1 MiB needs few read calls per GiB.
const CHUNK_BYTES = 1024 * 1024;
// One buffer receives the next read, one is being copied into the socket, and one more lets
// a read start before the socket has taken the chunk before last.
const BUFFER_COUNT = 3;

/**
 * Sends bytes `start` to `end` (inclusive) of `handle` as the body and ends the response.
 * If the file shrinks meanwhile the body ends early, as a read stream with `end` would.
 * Closes `handle` in every case. Resolves without error when the client goes away mid-body.
 */
export async function sendFileBody(exchange: Exchange, handle: FileHandle, start: number, end: number): Promise<void> {
  const { res } = exchange;
  const stop = end + 1;
  // A short range (a block read by the mount) needs only one small buffer.
  const chunkBytes = Math.min(CHUNK_BYTES, stop - start);
  const bufferCount = Math.min(BUFFER_COUNT, Math.ceil((stop - start) / chunkBytes));
  const buffers = Array.from({ length: bufferCount }, () => Buffer.allocUnsafe(chunkBytes));
  // writes[slot] settles once the socket has taken the chunk in buffers[slot].
  const writes: Promise<unknown>[] = buffers.map(() => Promise.resolve());
  let onClose: () => void = () => {};
  const clientGone = new Promise<'gone'>((resolve) => {
    onClose = () => resolve('gone');
  });
  res.once('close', onClose);

  // Reads the chunk at `position` into buffers[slot] once that buffer's last write is done.
  const readChunk = async (slot: number, position: number): Promise<number | 'gone'> => {
    if ((await Promise.race([writes[slot], clientGone])) === 'gone') {
      return 'gone';
    }
    const length = Math.min(chunkBytes, stop - position);
    const { bytesRead } = await handle.read(buffers[slot] as Buffer, 0, length, position);
    return bytesRead;
  };

  let slot = 0;
  let position = start;
  let pendingRead: Promise<number | 'gone'> | null = readChunk(slot, position);
  try {
    while (pendingRead !== null) {
      const bytesRead: number | 'gone' = await Promise.race([pendingRead, clientGone]);
      if (bytesRead === 'gone') {
        return;
      }
      const requested = Math.min(chunkBytes, stop - position);
      position += bytesRead;
      const nextSlot = (slot + 1) % bufferCount;
      // The next read is issued before this chunk's write, so the read runs on the thread
      // pool while the main thread copies this chunk into the socket. A short read means
      // the file ended early, so it is the last one.
      pendingRead = bytesRead === requested && position < stop ? readChunk(nextSlot, position) : null;
      if (bytesRead > 0) {
        exchange.bytesSent += bytesRead;
        writes[slot] = writeChunk(res, (buffers[slot] as Buffer).subarray(0, bytesRead));
      }
      slot = nextSlot;
    }
    if ((await Promise.race([Promise.all(writes), clientGone])) !== 'gone') {
      res.end();
    }
  } finally {
    res.off('close', onClose);
    // A read still in flight must finish before its descriptor is closed.
    await pendingRead?.catch(() => undefined);
    await handle.close();
  }
}

/** Resolves once the socket has taken `chunk`, so its buffer may be overwritten. */
function writeChunk(res: Exchange['res'], chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    // A write error destroys the response, which 'close' reports to sendFileBody.
    res.write(chunk, () => resolve());
  });
}
