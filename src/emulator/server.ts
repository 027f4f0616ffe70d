/** The HTTP server: one origin for the api, content and notify hosts, plus /_emulator. */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { stat } from 'node:fs/promises';
import { createContext, type EmulatorContext } from './context.js';
import { CONTROL_PREFIX, serveControl } from './control.js';
import { applyAccountSettings, validateAccountSettings } from './control-account.js';
import { serveApiRoute } from './dispatch.js';
import { applyFault } from './faults-apply.js';
import { validateFaultRule } from './faults.js';
import { HttpError, plainError } from './errors.js';
import { createExchange, sendError, type Exchange } from './exchange.js';
import { closeEmulatorState, openEmulatorState } from './emulator-state.js';
import { AUTHORIZE_PATH, serveAuthorizePage } from './oauth-authorize.js';
import { serveTokenRequest, TOKEN_ROUTE } from './oauth-token.js';
import type { Route } from './route-table.js';
import { createRouteMap } from './routes.js';
import type { Emulator, EmulatorOptions } from './types.js';

const TOKEN_PATHS = new Set(['/oauth2/token', '/1/oauth2/token']);
const API_PREFIX = '/2/';

/**
 * Starts an emulator serving `options.dataDir`. Rejects when the data folder is missing or
 * not a folder, or when the address cannot be bound.
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  await requireFolder(options.dataDir);
  const context = await createContext(options, (folder, hashes) =>
    // The watcher's errors (e.g. inotify out of watches) leave the periodic scan working.
    openEmulatorState(options, folder, hashes, () => undefined),
  );
  const routes = createRouteMap();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void handleRequest(context, routes, req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      void closeEmulatorState(context.state).finally(() => reject(error));
    });
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  context.state.baseUrl = `http://${host}:${address.port}`;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    appKey: context.appKey,
    appSecret: context.appSecret,
    refreshToken: context.refreshToken,
    calls: () => context.callLog.list(),
    clearCalls: () => context.callLog.clear(),
    addFault: (rule) => context.faults.add(validateFaultRule(rule)),
    faults: () => context.faults.list(),
    clearFaults: () => context.faults.clear(),
    setShaping: (settings) => context.shaping.update(settings),
    setAccountSettings: (settings) => applyAccountSettings(context, validateAccountSettings(settings)),
    invalidateCursors: () => context.state.account.journal.invalidate(),
    rescan: () => context.state.watcher.scanAll(),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) {
        socket.destroy();
      }
      await closed;
      await closeEmulatorState(context.state);
    },
  };
}

async function requireFolder(dataDir: string): Promise<void> {
  const info = await stat(dataDir).catch((error: NodeJS.ErrnoException) => {
    const message = `data folder ${dataDir} cannot be read (${error.code}); create it or pass an existing folder`;
    throw new Error(message, { cause: error });
  });
  if (!info.isDirectory()) {
    throw new Error(`data folder ${dataDir} is not a folder; pass a folder to serve`);
  }
}

async function handleRequest(
  context: EmulatorContext,
  routes: ReadonlyMap<string, Route>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { pathname } = new URL(req.url ?? '/', 'http://emulator.invalid');
  const isControl = pathname.startsWith(CONTROL_PREFIX);
  // Control calls are never shaped, so a test can change shaping without waiting on it.
  const exchange = createExchange(req, res, isControl ? null : context.shaping);
  if (!isControl) {
    res.on('close', () => recordCall(context, exchange));
  }
  try {
    if (!isControl && context.shaping.latencyMs > 0) {
      await context.shaping.delay();
    }
    if (isControl) {
      await serveControl(context, exchange);
    } else if (TOKEN_PATHS.has(pathname)) {
      exchange.route = TOKEN_ROUTE;
      if ((await applyFault(context, exchange, TOKEN_ROUTE, 'token')) === 'answered') {
        return;
      }
      await serveTokenRequest(context, exchange);
    } else if (pathname === AUTHORIZE_PATH) {
      exchange.route = 'oauth2/authorize';
      serveAuthorizePage(context, exchange);
    } else if (pathname.startsWith(API_PREFIX)) {
      await serveApiRoute(context, exchange, routes, pathname.slice(API_PREFIX.length));
    } else {
      throw plainError(404, `Unknown path ${pathname}; Dropbox API routes start with /2/.`);
    }
  } catch (error) {
    answerFailure(exchange, error);
  }
}

/** Sends the error response, or a 500 for an unexpected error; drops it once headers are out. */
function answerFailure(exchange: Exchange, error: unknown): void {
  const { res } = exchange;
  if (res.headersSent || res.destroyed) {
    // A cut request (the cut-request-after fault, or a client that left) takes no response.
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    sendError(exchange, error);
    return;
  }
  // Dropbox documents 5xx bodies as arbitrary, so the body carries the message for debugging.
  const message = error instanceof Error ? error.message : String(error);
  sendError(exchange, plainError(500, `Internal emulator error: ${message}`));
}

function recordCall(context: EmulatorContext, exchange: Exchange): void {
  const range = exchange.req.headers.range;
  context.callLog.add({
    route: exchange.route,
    arg: exchange.arg,
    ...(range === undefined ? {} : { range }),
    // 0 when no response was sent: a black hole, or a client that left first.
    status: exchange.res.headersSent ? exchange.res.statusCode : 0,
    bytes: exchange.bytesSent,
    ms: Math.round((performance.now() - exchange.startedAt) * 1000) / 1000,
    ...(exchange.fault === undefined ? {} : { fault: exchange.fault }),
  });
}
