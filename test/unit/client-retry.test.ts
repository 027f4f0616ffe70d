import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DropboxClient } from '../../src/dropbox/client.js';
import { parseConfig } from '../../src/config/config.js';
import { ApiError, AuthError, BadRequestError, UnavailableError } from '../../src/dropbox/errors.js';
import { silentLogger } from '../../src/log/logger.js';

type Responder = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface Scripted {
  url: string;
  seen: { path: string; auth?: string; arg?: string; body: string }[];
  server: Server;
}

const servers: Server[] = [];

// A scripted HTTP server on loopback: the token route always succeeds with a counter-numbered
// token, and each call of other routes takes the next responder from `script`.
async function scriptedServer(script: Responder[]): Promise<Scripted> {
  const seen: Scripted['seen'] = [];
  let tokens = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      seen.push({ path, auth: req.headers.authorization, arg: req.headers['dropbox-api-arg'] as string, body });
      if (path.startsWith('/oauth2/token')) {
        tokens++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ access_token: `token-${tokens}`, token_type: 'bearer', expires_in: 14400 }));
        return;
      }
      const next = script.shift();
      if (!next) {
        res.statusCode = 500;
        res.end('script exhausted');
        return;
      }
      next(req, res, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, server };
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Responder {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(value));
  };
}

function clientFor(url: string, retry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 }) {
  const config = parseConfig(
    { appKey: 'key', appSecret: 'secret', refreshToken: 'refresh', apiUrl: url, contentUrl: url, notifyUrl: url },
    'test',
  );
  return new DropboxClient({ config, timeoutMs: 2000, log: silentLogger(), retry });
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('DropboxClient retries', () => {
  it('retries a 503 and succeeds', async () => {
    const server = await scriptedServer([json(503, {}), json(200, { ok: 1 })]);
    const client = clientFor(server.url);
    await expect(client.rpc('files/get_metadata', { path: '/a' })).resolves.toEqual({ ok: 1 });
    expect(server.seen.filter((s) => s.path === '/2/files/get_metadata')).toHaveLength(2);
    await client.close();
  });

  it('waits for Retry-After on 429', async () => {
    const server = await scriptedServer([
      json(429, { error: { reason: { '.tag': 'too_many_requests' } } }, { 'retry-after': '1' }),
      json(200, { ok: 2 }),
    ]);
    const client = clientFor(server.url);
    const started = Date.now();
    await expect(client.rpc('files/list_folder', { path: '' })).resolves.toEqual({ ok: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    await client.close();
  });

  it('gives up after the attempts and names the route', async () => {
    const server = await scriptedServer([json(500, {}), json(502, {}), json(504, {})]);
    const client = clientFor(server.url);
    const error = await client.rpc('files/list_folder', { path: '' }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/files\/list_folder failed after 3 attempts/);
    await client.close();
  });

  it('refreshes once on expired_access_token and shares the refresh', async () => {
    const expired = json(401, { error_summary: 'expired_access_token/..', error: { '.tag': 'expired_access_token' } });
    const server = await scriptedServer([expired, expired, json(200, { n: 1 }), json(200, { n: 2 })]);
    const client = clientFor(server.url);
    await client.tokens.accessToken();
    const results = await Promise.all([client.rpc('a/b', {}), client.rpc('a/b', {})]);
    expect(results).toEqual([{ n: 1 }, { n: 2 }]);
    const tokenCalls = server.seen.filter((s) => s.path.startsWith('/oauth2/token'));
    expect(tokenCalls).toHaveLength(2);
    expect(server.seen.filter((s) => s.auth === 'Bearer token-2')).toHaveLength(2);
    await client.close();
  });

  it('does not retry a 409 and decodes its tags', async () => {
    const server = await scriptedServer([
      json(409, { error_summary: 'path/not_found/..', error: { '.tag': 'path', path: { '.tag': 'not_found' } } }),
    ]);
    const client = clientFor(server.url);
    const error = await client.rpc('files/get_metadata', { path: '/x' }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).tags).toEqual(['path', 'not_found']);
    expect(server.seen).toHaveLength(2);
    await client.close();
  });

  it('does not retry a 400', async () => {
    const server = await scriptedServer([
      (_req, res) => {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('Error in call to API function "files/get_metadata": request body: missing required field \'path\'');
      },
    ]);
    const client = clientFor(server.url);
    await expect(client.rpc('files/get_metadata', {})).rejects.toBeInstanceOf(BadRequestError);
    await client.close();
  });

  it('reports a second 401 as an auth error', async () => {
    const invalid = json(401, { error_summary: 'invalid_access_token/', error: { '.tag': 'invalid_access_token' } });
    const server = await scriptedServer([invalid, invalid]);
    const client = clientFor(server.url);
    await expect(client.rpc('a/b', {})).rejects.toBeInstanceOf(AuthError);
    await client.close();
  });

  it('escapes non-ASCII in Dropbox-API-Arg', async () => {
    const server = await scriptedServer([
      (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'dropbox-api-result': JSON.stringify({ name: 'x', size: 2 }),
        });
        res.end('hi');
      },
    ]);
    const client = clientFor(server.url);
    const download = await client.download('/Caf\u00e9 \u{1F600}.txt');
    download.body.resume();
    const arg = server.seen.find((s) => s.path === '/2/files/download')?.arg ?? '';
    expect(arg).toBe('{"path":"/Caf\\u00e9 \\ud83d\\ude00.txt"}');
    await client.close();
  });

  it('fails fast when nothing listens', async () => {
    const server = await scriptedServer([]);
    const url = server.url;
    server.server.close();
    const client = clientFor(url);
    const started = Date.now();
    await expect(client.rpc('files/list_folder', { path: '' })).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);
    await client.close();
  });
});
