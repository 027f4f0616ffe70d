/**
 * The OAuth 2 authorization-code flow with PKCE (RFC 7636, S256) that `dropbox-mount login`
 * runs: build the authorize URL, receive the code on a loopback redirect or from standard
 * input, and exchange it at `oauth2/token` for an offline refresh token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { AuthError } from '../dropbox/errors.js';
import { DropboxMountError } from '../errors.js';

export const DEFAULT_AUTHORIZE_URL = 'https://www.dropbox.com/oauth2/authorize';
export const CALLBACK_PATH = '/callback';

/** The PKCE verifier and challenge, and the `state` value that ties the redirect to this run. */
export interface PkceSession {
  verifier: string;
  challenge: string;
  state: string;
}

export interface TokenGrant {
  refreshToken: string;
  accessToken: string;
  accountId?: string;
}

/** Creates a verifier of 43 characters from 32 random bytes, as RFC 7636 section 4.1 allows. */
export function createPkceSession(): PkceSession {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, state: randomBytes(16).toString('base64url') };
}

/** Builds the URL of the page where the user approves access and gets an offline token. */
export function buildAuthorizeUrl(
  authorizeUrl: string,
  appKey: string,
  session: PkceSession,
  redirectUri: string | undefined,
): string {
  const url = new URL(authorizeUrl);
  url.searchParams.set('client_id', appKey);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('token_access_type', 'offline');
  url.searchParams.set('code_challenge', session.challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', session.state);
  if (redirectUri !== undefined) url.searchParams.set('redirect_uri', redirectUri);
  return url.toString();
}

/** A loopback HTTP server that receives the authorization redirect. */
export interface CallbackServer {
  redirectUri: string;
  /** Resolves with the code of the first redirect whose `state` matches. */
  code: Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts a server on 127.0.0.1:`port` (0 picks a free port) that serves `/callback`. A redirect
 * with the wrong `state` gets a 400 and is otherwise ignored, so a forged request cannot end the
 * login. A redirect with `error` rejects `code` with the error Dropbox sent.
 */
export async function startCallbackServer(
  port: number,
  state: string,
  onRejected: (reason: string) => void,
): Promise<CallbackServer> {
  let resolveCode!: (code: string) => void;
  let rejectCode!: (err: Error) => void;
  const code = new Promise<string>((resolve, reject) => {
    resolveCode = resolve;
    rejectCode = reject;
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${text}\n`);
    };
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) {
      reply(404, 'Not found.');
      return;
    }
    if (url.searchParams.get('state') !== state) {
      onRejected('a redirect arrived with a missing or wrong state parameter and was ignored');
      reply(400, 'Invalid state parameter: this redirect does not belong to the running login.');
      return;
    }
    const error = url.searchParams.get('error');
    if (error !== null) {
      const description = url.searchParams.get('error_description') ?? '';
      reply(400, `Authorization failed: ${error} ${description}`.trim());
      rejectCode(new DropboxMountError('LOGIN_DENIED', `authorization failed: ${error} ${description}`.trim()));
      return;
    }
    const value = url.searchParams.get('code');
    if (value === null || value === '') {
      reply(400, 'Missing code parameter.');
      return;
    }
    reply(200, 'dropbox-mount received the authorization code. You can close this tab.');
    resolveCode(value);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${address.port}${CALLBACK_PATH}`,
    code,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Reads lines from `input` until one contains a code: either the code itself or the whole
 * redirect URL copied from the browser's address bar, whose `state` must match. Resolves with
 * undefined at the end of the input.
 */
export function readPastedCode(
  input: NodeJS.ReadableStream,
  state: string,
  onRejected: (reason: string) => void,
): { code: Promise<string | undefined>; close(): void } {
  const lines = createInterface({ input, terminal: false });
  const code = new Promise<string | undefined>((resolve) => {
    lines.on('line', (line) => {
      const parsed = parsePastedCode(line.trim(), state);
      if (parsed.code !== undefined) {
        // Resolve before close(), because close() emits 'close' at once, which resolves undefined.
        resolve(parsed.code);
        lines.close();
      } else if (parsed.problem !== undefined) {
        onRejected(parsed.problem);
      }
    });
    lines.on('close', () => resolve(undefined));
  });
  return { code, close: () => lines.close() };
}

/** Returns the code in a pasted line, or the reason the line contains no usable code. */
export function parsePastedCode(line: string, state: string): { code?: string; problem?: string } {
  if (line === '') return {};
  if (!/^https?:\/\//.test(line)) return { code: line };
  let url: URL;
  try {
    url = new URL(line);
  } catch {
    return { problem: 'the pasted line starts like a URL but is not a valid URL; paste the whole URL or only the code' };
  }
  if (url.searchParams.get('state') !== state) {
    return { problem: 'the pasted URL has a missing or wrong state parameter; paste the URL of this login' };
  }
  const value = url.searchParams.get('code');
  if (value === null || value === '') return { problem: 'the pasted URL has no code parameter' };
  return { code: value };
}

export interface ExchangeOptions {
  tokenUrl: string;
  appKey: string;
  appSecret?: string;
  code: string;
  verifier: string;
  redirectUri?: string;
  timeoutMs: number;
}

/**
 * Exchanges an authorization code for tokens.
 * @throws AuthError with Dropbox's error tag when the code or the app credentials are rejected.
 */
export async function exchangeCode(options: ExchangeOptions): Promise<TokenGrant> {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: options.code,
    client_id: options.appKey,
    code_verifier: options.verifier,
  });
  if (options.appSecret !== undefined) form.set('client_secret', options.appSecret);
  if (options.redirectUri !== undefined) form.set('redirect_uri', options.redirectUri);
  const response = await request(options.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const text = await response.body.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // A non-JSON body is reported by status below.
  }
  if (response.statusCode !== 200) {
    const tag = typeof body.error === 'string' ? body.error : `http_${response.statusCode}`;
    const description = typeof body.error_description === 'string' ? `: ${body.error_description}` : '';
    throw new AuthError(
      tag,
      `oauth2/token rejected the authorization code with HTTP ${response.statusCode} (${tag}${description}); ` +
        'run login again, and check --app-key and --app-secret',
    );
  }
  if (typeof body.refresh_token !== 'string' || typeof body.access_token !== 'string') {
    throw new AuthError(
      'malformed_response',
      'oauth2/token returned no refresh_token; the authorize URL must contain token_access_type=offline',
    );
  }
  return {
    refreshToken: body.refresh_token,
    accessToken: body.access_token,
    accountId: typeof body.account_id === 'string' ? body.account_id : undefined,
  };
}
