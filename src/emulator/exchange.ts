/**
 * One request and its response. Every response body goes through the helpers here, so the
 * call log counts bytes in one place, and bandwidth pacing and body faults (a body cut after
 * N bytes, a file changed mid-download) apply in one place, in shaping-body.ts.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from './errors.js';
import type { Shaping } from './shaping.js';
import { readShapedBody, writeShapedBody, type BodyFault } from './shaping-body.js';

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Route name for the call log; set once the URL has been dispatched. */
  route: string;
  /** Parsed argument for the call log. Never contains tokens or secrets. */
  arg: unknown;
  bytesSent: number;
  readonly startedAt: number;
  /** Latency and bandwidth settings; null when the exchange is never shaped (control calls). */
  readonly shaping: Shaping | null;
  /** Fault that acts on the response body of a download, set by the fault rule table. */
  bodyFault?: BodyFault;
  /**
   * Request body bytes to read before the connection is destroyed (the cut-request-after
   * fault); undefined for no cut.
   */
  requestCutAfterBytes?: number;
  /** Fault kind that acted on this call, for the call log, e.g. '429' or 'cut-after'. */
  fault?: string;
}

/** The error a body reader throws once the cut-request-after fault destroyed the connection. */
export class RequestCutError extends Error {
  override readonly name = 'RequestCutError';
}

export function createExchange(
  req: IncomingMessage,
  res: ServerResponse,
  shaping: Shaping | null = null,
): Exchange {
  // The Host header only names the origin, so a fixed base avoids trusting it for parsing.
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  res.setHeader('X-Dropbox-Request-Id', randomBytes(16).toString('hex'));
  const startedAt = performance.now();
  return { req, res, url, route: url.pathname, arg: null, bytesSent: 0, startedAt, shaping };
}

/** Sends `body` as the whole response. */
export function sendBody(
  exchange: Exchange,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const { res } = exchange;
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) {
    res.setHeader(name, value);
  }
  if (status !== 204 && status !== 304) {
    res.setHeader('Content-Type', contentType);
    res.setHeader('Content-Length', bytes.length);
    const bucket = exchange.shaping?.bucket ?? null;
    if (bucket !== null && bytes.length > 0) {
      // Paced JSON and error bodies finish later; the call log records them on 'close'.
      writeShapedBody(exchange, [bytes], bucket, undefined).catch(() => res.destroy());
      return;
    }
    exchange.bytesSent += bytes.length;
    res.end(bytes);
    return;
  }
  res.end();
}

/** Sends a JSON success response with exactly `Content-Type: application/json`. */
export function sendJson(exchange: Exchange, value: unknown, status = 200): void {
  sendBody(exchange, status, 'application/json', JSON.stringify(value));
}

/** Sends the response that `error` describes. */
export function sendError(exchange: Exchange, error: HttpError): void {
  sendBody(exchange, error.status, error.contentType, error.body, error.headers);
}

/**
 * Streams `body` into the response after the caller has set status and headers. Backpressure
 * comes from `pipeline`, which also destroys `body` when the client goes away, so a file
 * stream opened with autoClose releases its descriptor on abort.
 */
export async function streamBody(exchange: Exchange, body: Readable): Promise<void> {
  const bucket = exchange.shaping?.bucket ?? null;
  try {
    if (bucket !== null || exchange.bodyFault !== undefined) {
      // Leaving the for-await loop inside destroys `body`, as pipeline does.
      await writeShapedBody(exchange, body, bucket, exchange.bodyFault);
      return;
    }
    body.on('data', (chunk: Buffer) => {
      exchange.bytesSent += chunk.length;
    });
    await pipeline(body, exchange.res);
  } catch (error) {
    // Range readers often disconnect mid-body, and a closed socket takes no error response.
    if (!exchange.res.destroyed) {
      throw error;
    }
  }
}

/**
 * Reads the whole request body. Above `maxBytes` it keeps draining, so the connection stays
 * usable for the error response, and then rejects with a 400.
 */
export async function readBody(exchange: Exchange, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of requestChunks(exchange)) {
    total += chunk.length;
    if (total <= maxBytes) {
      chunks.push(chunk);
    }
  }
  if (total > maxBytes) {
    throw new HttpError(400, 'text/plain; charset=utf-8', `Request body exceeds ${maxBytes} bytes.`);
  }
  return Buffer.concat(chunks);
}

/**
 * Returns the request body as chunks, paced by the bandwidth cap when one is set. Routes that
 * stream a request body (uploads) read it through here, so uploads count against the cap.
 */
export function requestChunks(exchange: Exchange): AsyncIterable<Buffer> {
  const body = exchange.req as AsyncIterable<Buffer>;
  const bucket = exchange.shaping?.bucket ?? null;
  const chunks = bucket === null ? body : readShapedBody(body, bucket);
  const cutAfter = exchange.requestCutAfterBytes;
  return cutAfter === undefined ? chunks : cutRequest(exchange, chunks, cutAfter);
}

/**
 * Yields the first `afterBytes` bytes of the body, then destroys the connection and throws
 * RequestCutError, as when a link fails mid-request. A shorter body is cut at its end, so
 * the server sends no response either way.
 */
async function* cutRequest(exchange: Exchange, chunks: AsyncIterable<Buffer>, afterBytes: number) {
  let received = 0;
  for await (const chunk of chunks) {
    const room = afterBytes - received;
    if (chunk.length >= room) {
      if (room > 0) {
        yield chunk.subarray(0, room);
      }
      break;
    }
    received += chunk.length;
    yield chunk;
  }
  exchange.fault = 'cut-request-after';
  exchange.res.destroy();
  throw new RequestCutError(`connection cut after ${afterBytes} request body bytes`);
}

/** Discards the request body so that a keep-alive connection can carry the next request. */
export function drainBody(exchange: Exchange): void {
  exchange.req.resume();
}
