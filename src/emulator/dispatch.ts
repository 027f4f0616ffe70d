/**
 * Dispatch of /2/<route> requests: route lookup, method, auth, Content-Type and argument
 * decoding, then the route's handler. One origin serves the api, content and notify hosts,
 * because route names are unique across them.
 */

import { contentArgSource, decodeJsonArg, validateStruct, validateVoid, type ArgSource } from './args.js';
import type { EmulatorContext } from './context.js';
import { badInput, plainError } from './errors.js';
import { drainBody, readBody, sendJson, type Exchange } from './exchange.js';
import { applyFault } from './faults-apply.js';
import { authenticate } from './request-auth.js';
import type { DownloadRoute, Route, RpcRoute, UploadRoute } from './route-table.js';

// RPC arguments are small JSON objects; this bounds memory against a runaway client.
const MAX_RPC_BODY_BYTES = 1024 * 1024;

const RPC_CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain; charset=dropbox-cors-hack',
];

// NOTE: Dropbox does not document which Content-Types download routes accept; the SDKs send
// none. This list admits what clients send for an empty body and rejects JSON and forms.
const DOWNLOAD_CONTENT_TYPES = [
  'application/octet-stream',
  'text/plain',
  'text/plain; charset=utf-8',
  'text/plain; charset=dropbox-cors-hack',
];

// Upload routes accept these, per the server's own 400 text.
const UPLOAD_CONTENT_TYPES = ['application/octet-stream', 'text/plain; charset=dropbox-cors-hack'];

/** Serves /2/<name>; throws the HttpError for a rejected request. */
export async function serveApiRoute(
  context: EmulatorContext,
  exchange: Exchange,
  routes: ReadonlyMap<string, Route>,
  name: string,
): Promise<void> {
  exchange.route = name;
  const route = routes.get(name);
  if (route === undefined) {
    // Dropbox returns 400 in its usual plain-text form for an unknown function, not 404.
    throw badInput(name, `Unknown API function: /2/${name}`);
  }
  if ((await applyFault(context, exchange, name, route.style)) === 'answered') {
    return;
  }
  checkMethod(exchange, route);
  authenticate(context, exchange, route);
  if (route.style === 'rpc') {
    await serveRpc(context, exchange, route);
  } else if (route.style === 'upload') {
    await serveUpload(context, exchange, route);
  } else {
    await serveDownload(context, exchange, route);
  }
}

async function serveUpload(context: EmulatorContext, exchange: Exchange, route: UploadRoute): Promise<void> {
  try {
    checkContentType(route.name, exchange.req.headers['content-type'], UPLOAD_CONTENT_TYPES);
    const { source, text } = headerOrQueryArg(exchange, route.name);
    const value = decodeJsonArg(route.name, source, text);
    const arg = route.arg === 'void'
      ? validateVoid(route.name, value)
      : validateStruct(route.name, source, route.arg, value);
    exchange.arg = arg;
    sendJson(exchange, await route.handle(context, exchange, arg as never));
  } finally {
    // A body left unread (a rejected argument) would stall the keep-alive connection.
    drainBody(exchange);
  }
}

async function serveRpc(
  context: EmulatorContext,
  exchange: Exchange,
  route: RpcRoute,
): Promise<void> {
  const body = await readBody(exchange, MAX_RPC_BODY_BYTES);
  const contentType = exchange.req.headers['content-type'];
  // The JavaScript SDK calls Void routes with neither a body nor a Content-Type.
  const voidWithoutBody = route.arg === 'void' && body.length === 0;
  if (!(voidWithoutBody && contentType === undefined)) {
    checkContentType(route.name, contentType, RPC_CONTENT_TYPES);
  }
  let arg: unknown = null;
  if (!voidWithoutBody) {
    const value = decodeJsonArg(route.name, 'request body', body.toString('utf8'));
    arg = route.arg === 'void'
      ? validateVoid(route.name, value)
      : validateStruct(route.name, 'request body', route.arg, value);
  }
  exchange.arg = arg;
  const result = await route.handle(context, arg as never);
  sendJson(exchange, result);
}

async function serveDownload(
  context: EmulatorContext,
  exchange: Exchange,
  route: DownloadRoute,
): Promise<void> {
  drainBody(exchange);
  const contentType = exchange.req.headers['content-type'];
  if (contentType !== undefined && contentType !== '') {
    checkContentType(route.name, contentType, DOWNLOAD_CONTENT_TYPES);
  }
  const { source, text } = headerOrQueryArg(exchange, route.name);
  const value = decodeJsonArg(route.name, source, text);
  const arg = route.arg === 'void'
    ? validateVoid(route.name, value)
    : validateStruct(route.name, source, route.arg, value);
  exchange.arg = arg;
  await route.handle(context, exchange, arg as never);
}

function headerOrQueryArg(
  exchange: Exchange,
  routeName: string,
): { source: ArgSource; text: string } {
  const header = exchange.req.headers['dropbox-api-arg'];
  if (contentArgSource(exchange.req.headers) === 'HTTP header "Dropbox-API-Arg"' && typeof header === 'string') {
    // Node exposes header bytes as Latin-1. Clients should send ASCII with \u escapes, but
    // Dropbox now accepts raw UTF-8 as well, so the bytes are decoded as UTF-8.
    const text = Buffer.from(header, 'latin1').toString('utf8');
    return { source: 'HTTP header "Dropbox-API-Arg"', text };
  }
  const query = exchange.url.searchParams.get('arg');
  if (query !== null) {
    return { source: 'URL parameter "arg"', text: query };
  }
  throw badInput(routeName, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
}

/**
 * Rejects methods a route does not serve. Every route takes POST and download routes also
 * take GET; Dropbox does not document the status for others, so this uses HTTP's 405.
 */
function checkMethod(exchange: Exchange, route: Route): void {
  const allowed = route.style === 'download' ? ['GET', 'POST'] : ['POST'];
  if (!allowed.includes(exchange.req.method ?? '')) {
    const message = `Method ${exchange.req.method} is not allowed for ${route.name}; use ${allowed.join(' or ')}.`;
    throw plainError(405, message, { Allow: allowed.join(', ') });
  }
}

function checkContentType(routeName: string, value: string | undefined, accepted: readonly string[]): void {
  const normalized = (value ?? '').trim().toLowerCase().replace(/\s*;\s*/g, '; ');
  if (!accepted.includes(normalized)) {
    const expected = accepted.map((type) => JSON.stringify(type)).join(', ');
    const received = JSON.stringify(value ?? '');
    throw badInput(routeName, `Bad HTTP "Content-Type" header: ${received}.  Expecting one of ${expected}.`);
  }
}
