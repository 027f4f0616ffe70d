/**
 * Body transfer on the shaped path: response bodies paced by the bandwidth bucket and acted
 * on by a body fault (a cut, or a file change after N bytes), and request bodies read at the
 * bucket's rate. exchange.ts sends a body through here only when shaping or a body fault
 * applies, so unshaped transfers keep their plain `pipeline` and `for await` loops.
 */

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TokenBucket } from './shaping.js';

/** What a body fault does once `afterBytes` body bytes have reached the socket. */
export interface BodyFault {
  afterBytes: number;
  /** Runs once; 'cut' ends the connection there, 'continue' sends the rest of the body. */
  act(): Promise<'cut' | 'continue'>;
}

/** The parts of an Exchange that body transfer reads and updates. */
export interface BodyTarget {
  readonly res: ServerResponse;
  bytesSent: number;
}

/**
 * Writes `chunks` to the response and ends it, pacing slices through `bucket` when one is
 * given and acting on `fault` when its byte count is reached. A cut ends the TCP connection
 * after the bytes before it are flushed, while the headers still announce the full length,
 * so the client sees a short body. Rejects when the client goes away mid-body.
 */
export async function writeShapedBody(
  target: BodyTarget,
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  bucket: TokenBucket | null,
  fault: BodyFault | undefined,
): Promise<void> {
  const { res } = target;
  let pending = fault;
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) {
      if (pending !== undefined && target.bytesSent >= pending.afterBytes) {
        const outcome = await pending.act();
        pending = undefined;
        if (outcome === 'cut') {
          cutConnection(res);
          return;
        }
      }
      let size = chunk.length - offset;
      if (bucket !== null) {
        size = Math.min(size, bucket.sliceBytes);
      }
      if (pending !== undefined) {
        size = Math.min(size, pending.afterBytes - target.bytesSent);
      }
      if (bucket !== null) {
        await bucket.take(size);
      }
      await writeChunk(res, chunk.subarray(offset, offset + size));
      target.bytesSent += size;
      offset += size;
    }
  }
  // A fault placed exactly at the body's end still acts; one placed past it never does.
  if (pending !== undefined && target.bytesSent >= pending.afterBytes) {
    if ((await pending.act()) === 'cut') {
      cutConnection(res);
      return;
    }
  }
  res.end();
}

/** Yields the request body in slices, each let through by `bucket` before it is passed on. */
export async function* readShapedBody(
  chunks: AsyncIterable<Buffer>,
  bucket: TokenBucket,
): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    // While this generator waits, the request stream is paused, so TCP flow control slows
    // the client down to the bucket's rate.
    for (let offset = 0; offset < chunk.length; offset += bucket.sliceBytes) {
      const slice = chunk.subarray(offset, offset + bucket.sliceBytes);
      await bucket.take(slice.length);
      yield slice;
    }
  }
}

/** Resolves once `chunk` has been handed to the socket; rejects if the client went away. */
function writeChunk(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(new Error('the client closed the connection mid-body'));
    res.once('close', onClose);
    res.write(chunk, (error) => {
      res.off('close', onClose);
      if (error) {
        reject(error);
      } else {
        resolve();
      }
    });
  });
}

/**
 * Closes the connection under a response whose body is unfinished. `end` sends a FIN after
 * the queued bytes, so the client receives every byte written before the cut and then EOF.
 * `destroy` follows once the FIN is out, so no socket lingers.
 */
function cutConnection(res: ServerResponse): void {
  const socket: Socket | null = res.socket;
  if (socket === null) {
    res.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end();
}
