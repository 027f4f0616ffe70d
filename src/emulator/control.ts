/**
 * The control endpoint under /_emulator, for tests that run the emulator as a child process.
 * It is not a Dropbox route, needs no token and is left out of the call log.
 * - GET /_emulator/calls: the call log as a JSON array of CallRecord.
 * - DELETE /_emulator/calls: clears the call log.
 * - /_emulator/faults and /_emulator/shaping: see faults-control.ts.
 * - /_emulator/account (quota and read-only folders): see control-account.ts.
 * - /_emulator/files/* (changes made as another program would) and /_emulator/link/*
 *   (temporary links): see control-files.ts.
 */

import { ACCOUNT_PATH, serveAccountControl } from './control-account.js';
import type { EmulatorContext } from './context.js';
import { FILES_CONTROL_PREFIX, LINK_PATH_PREFIX, serveFilesControl, serveTemporaryLink } from './control-files.js';
import { plainError } from './errors.js';
import { sendBody, sendJson, type Exchange } from './exchange.js';
import { FAULTS_PATH, serveFaultsControl, serveShapingControl, SHAPING_PATH } from './faults-control.js';

export const CONTROL_PREFIX = '/_emulator/';

/** Serves one control request; throws the HttpError for an unknown one. */
export async function serveControl(context: EmulatorContext, exchange: Exchange): Promise<void> {
  const { pathname } = exchange.url;
  if (pathname === FAULTS_PATH) {
    return serveFaultsControl(context, exchange);
  }
  if (pathname === SHAPING_PATH) {
    return serveShapingControl(context, exchange);
  }
  if (pathname === ACCOUNT_PATH) {
    return serveAccountControl(context, exchange);
  }
  if (pathname.startsWith(FILES_CONTROL_PREFIX)) {
    return serveFilesControl(context, exchange);
  }
  if (pathname.startsWith(LINK_PATH_PREFIX)) {
    return serveTemporaryLink(context, exchange);
  }
  if (pathname !== '/_emulator/calls') {
    const known = `/_emulator/calls, ${FAULTS_PATH}, ${SHAPING_PATH}, ${ACCOUNT_PATH}, ${FILES_CONTROL_PREFIX}*`;
    throw plainError(404, `Unknown control endpoint ${pathname}; the emulator serves ${known}.`);
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
