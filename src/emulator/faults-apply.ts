/**
 * Applies the fault rule that matches a request, in the shapes Dropbox sends:
 * - 429: JSON RateLimitError `{error_summary, error: {reason: {".tag"}, retry_after}}` with
 *   `Retry-After` in seconds,
 * - 500 and 503: a plain-text body, which Dropbox documents as arbitrary for 5xx,
 * - expired-token: 401 JSON AuthError `expired_access_token` with `WWW-Authenticate`,
 * - black-hole: the request is read and never answered,
 * - too-many-write-operations: 409 with `too_many_write_operations` where the route's error
 *   union puts it (see writeContentionError); the route does no work,
 * - reset: every cursor is invalidated, then the route runs and reports `reset` itself,
 * - cut-after and change-after: set up a body fault that the download body writer runs,
 * - cut-request-after: the route runs, and the request body reader destroys the connection
 *   after N bytes (see exchange.ts), so the route must drop what it received.
 */

import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EmulatorContext } from './context.js';
import { authError, errorSummary, routeError, type ErrorUnion } from './errors.js';
import { sendBody, sendError, type Exchange } from './exchange.js';
import type { FaultRule } from './faults.js';
import type { Route } from './route-table.js';

export type FaultOutcome = 'answered' | 'continue';

/**
 * Consults the fault table for a call to `route` and applies the matching rule. `style` is
 * the route's style, or 'token' for the OAuth token endpoint. Returns 'answered' when the
 * fault took the place of the response (or of any response, for a black hole), else
 * 'continue' and the caller serves the route.
 */
export async function applyFault(
  context: EmulatorContext,
  exchange: Exchange,
  route: string,
  style: Route['style'] | 'token',
): Promise<FaultOutcome> {
  const rule = context.faults.take(route, {
    sendsFileBody: style === 'download',
    readsRequestBody: style !== 'download',
  });
  if (rule === undefined) {
    return 'continue';
  }
  // Body faults record themselves when they act, since an error reply never reaches them.
  if (rule.fault !== 'cut-after' && rule.fault !== 'change-after' && rule.fault !== 'cut-request-after') {
    exchange.fault = rule.fault;
  }
  switch (rule.fault) {
    case '429':
      sendRateLimit(exchange, rule);
      return 'answered';
    case '500':
      sendBody(exchange, 500, 'text/plain; charset=utf-8', 'Internal Server Error');
      return 'answered';
    case '503':
      sendBody(exchange, 503, 'text/plain; charset=utf-8', 'Service Unavailable');
      return 'answered';
    case 'expired-token':
      sendError(exchange, authError('expired_access_token'));
      return 'answered';
    case 'too-many-write-operations':
      sendError(exchange, routeError(writeContentionError(route)));
      return 'answered';
    case 'black-hole':
      await holdUntilClosed(exchange);
      return 'answered';
    case 'reset':
      invalidateCursors(context);
      return 'continue';
    case 'cut-after':
      exchange.bodyFault = { afterBytes: rule.bytes ?? 0, act: () => cutBody(exchange) };
      return 'continue';
    case 'change-after':
      exchange.bodyFault = { afterBytes: rule.bytes ?? 0, act: () => changeFile(context, exchange, rule) };
      return 'continue';
    case 'cut-request-after':
      exchange.requestCutAfterBytes = rule.bytes ?? 0;
      return 'continue';
  }
}

/**
 * Returns the route error for namespace lock contention in the route's own union: a top-level
 * tag for DeleteError and UploadSessionFinishError, else a WriteError where the route puts
 * one (inlined UploadWriteFailed for files/upload, `path` for create_folder_v2).
 * NOTE: RelocationError has no top-level tag for it, and Dropbox does not document which of
 * `from_write` and `to` carries it; this uses `to`.
 */
function writeContentionError(route: string): ErrorUnion {
  const writeError = { '.tag': 'too_many_write_operations' };
  switch (route) {
    case 'files/upload':
      return { '.tag': 'path', reason: writeError, upload_session_id: newUploadSessionId() };
    case 'files/create_folder_v2':
      return { '.tag': 'path', path: writeError };
    case 'files/move_v2':
    case 'files/copy_v2':
      return { '.tag': 'to', to: writeError };
    default:
      return writeError;
  }
}

function newUploadSessionId(): string {
  return 'pid_upload_session:' + randomBytes(24).toString('base64url');
}

function sendRateLimit(exchange: Exchange, rule: FaultRule): void {
  const seconds = rule.retryAfterSeconds ?? 1;
  const reason = { '.tag': rule.reason ?? 'too_many_requests' };
  // RateLimitError is a struct, so the summary comes from its `reason` union.
  const body = { error_summary: errorSummary(reason), error: { reason, retry_after: seconds } };
  sendBody(exchange, 429, 'application/json', JSON.stringify(body), { 'Retry-After': String(seconds) });
}

/** Reads and discards the request, then waits until the client or the emulator closes. */
async function holdUntilClosed(exchange: Exchange): Promise<void> {
  exchange.req.resume();
  if (exchange.res.destroyed) {
    return;
  }
  await new Promise<void>((resolve) => exchange.res.once('close', resolve));
}

function invalidateCursors(context: EmulatorContext): void {
  // The same call as Emulator.invalidateCursors: a new journal epoch makes old cursors `reset`.
  context.state.account.journal.invalidate();
}

async function cutBody(exchange: Exchange): Promise<'cut'> {
  exchange.fault = 'cut-after';
  return 'cut';
}

/**
 * Replaces the downloaded file's content by writing a temporary file and renaming it over
 * the old one. The download in flight reads from its open descriptor, so it keeps sending
 * the old version that its `Dropbox-API-Result` describes, as Dropbox keeps serving the rev
 * a download started with. Later requests see the new version.
 */
async function changeFile(
  context: EmulatorContext,
  exchange: Exchange,
  rule: FaultRule,
): Promise<'continue'> {
  exchange.fault = 'change-after';
  const result = exchange.res.getHeader('dropbox-api-result');
  const pathDisplay = (JSON.parse(String(result)) as { path_display: string }).path_display;
  // NOTE: path_display carries the on-disk case of every component, as the data folder
  // reports it; a path whose case differs on disk would name a new file instead.
  const diskPath = join(context.folder.root, pathDisplay);
  const content =
    rule.content === undefined
      ? invertBytes(await readFile(diskPath))
      : Buffer.from(rule.content, 'utf8');
  const temporary = join(dirname(diskPath), `.emulator-change-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(temporary, content);
    await rename(temporary, diskPath);
  } finally {
    await rm(temporary, { force: true });
  }
  return 'continue';
}

function invertBytes(bytes: Buffer): Buffer {
  const inverted = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i += 1) {
    inverted[i] = ~(bytes[i] as number) & 0xff;
  }
  return inverted;
}
