/**
 * The control endpoint under /_emulator, for tests that run the emulator as a child process.
 * It is not a Dropbox route, needs no token and is left out of the call log.
 * - GET /_emulator/calls: the call log as a JSON array of CallRecord.
 * - DELETE /_emulator/calls: clears the call log.
 */

import type { EmulatorContext } from './context.js';
import { plainError } from './errors.js';
import { sendBody, sendJson, type Exchange } from './exchange.js';

export const CONTROL_PREFIX = '/_emulator/';

/** Serves one control request; throws the HttpError for an unknown one. */
export function serveControl(context: EmulatorContext, exchange: Exchange): void {
  const { pathname } = exchange.url;
  if (pathname !== '/_emulator/calls') {
    throw plainError(404, `Unknown control endpoint ${pathname}; the emulator serves /_emulator/calls.`);
  }
  switch (exchange.req.method) {
    case 'GET':
      sendJson(exchange, context.callLog.list());
      return;
    case 'DELETE':
      context.callLog.clear();
      sendBody(exchange, 204, '', '');
      return;
    default:
      throw plainError(405, 'Use GET to read the call log or DELETE to clear it.', { Allow: 'GET, DELETE' });
  }
}
