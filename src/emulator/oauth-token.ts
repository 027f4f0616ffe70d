/**
 * POST /oauth2/token (also served at /1/oauth2/token, which rclone uses), for
 * grant_type=refresh_token and grant_type=authorization_code with codes from the emulator's
 * /oauth2/authorize page (see oauth-authorize.ts), PKCE included. Parameters are merged from the query string (the JavaScript SDK's
 * style), a form body (the Python SDK's) and HTTP Basic credentials (key:secret).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { EmulatorContext } from './context.js';
import { s256Challenge } from './oauth-codes.js';
import { oauthError } from './errors.js';
import { readBody, sendJson, type Exchange } from './exchange.js';

export const TOKEN_ROUTE = 'oauth2/token';

const MAX_FORM_BYTES = 64 * 1024;

/** Serves one token request; throws the HttpError for a rejected one. */
export async function serveTokenRequest(context: EmulatorContext, exchange: Exchange): Promise<void> {
  const params = await collectParams(exchange);
  const grantType = params.get('grant_type');
  // The call log records the grant type only: the other parameters are secrets.
  exchange.arg = { grant_type: grantType };
  if (exchange.req.method !== 'POST') {
    throw oauthError('invalid_request', 'token requests must use POST');
  }
  if (grantType === null) {
    throw oauthError('invalid_request', 'missing grant_type');
  }
  checkClient(context, params);
  if (grantType === 'authorization_code') {
    exchangeCode(context, exchange, params);
    return;
  }
  if (grantType !== 'refresh_token') {
    throw oauthError('unsupported_grant_type', `unsupported grant_type ${JSON.stringify(grantType)}`);
  }
  const refreshToken = params.get('refresh_token');
  if (refreshToken === null) {
    throw oauthError('invalid_request', 'missing refresh_token');
  }
  if (!secretEquals(refreshToken, context.refreshToken)) {
    throw oauthError('invalid_grant', 'refresh token is invalid or revoked');
  }
  const issued = context.tokens.issue();
  sendJson(exchange, {
    access_token: issued.accessToken,
    token_type: 'bearer',
    expires_in: issued.expiresIn,
  });
}

/**
 * Redeems an authorization code. A code issued with a PKCE challenge needs the matching
 * code_verifier; one issued without needs the client secret. The refresh token returned is
 * the one refresh token this emulator accepts.
 */
function exchangeCode(context: EmulatorContext, exchange: Exchange, params: URLSearchParams): void {
  const code = params.get('code');
  if (code === null) {
    throw oauthError('invalid_request', 'missing code');
  }
  const grant = context.state.codes.redeem(code);
  if (grant === undefined || grant.clientId !== params.get('client_id')) {
    throw oauthError('invalid_grant', "code doesn't exist or has expired");
  }
  if (grant.redirectUri !== null && params.get('redirect_uri') !== grant.redirectUri) {
    throw oauthError('invalid_grant', 'redirect_uri mismatch');
  }
  const verifier = params.get('code_verifier');
  if (grant.codeChallenge !== null) {
    if (verifier === null || !secretEquals(s256Challenge(verifier), grant.codeChallenge)) {
      throw oauthError('invalid_grant', 'invalid code verifier');
    }
  } else if (params.get('client_secret') === null) {
    throw oauthError('invalid_client', 'client_secret is required for codes issued without code_challenge');
  }
  const issued = context.tokens.issue();
  const { accountId } = context.account;
  sendJson(exchange, {
    access_token: issued.accessToken,
    token_type: 'bearer',
    expires_in: issued.expiresIn,
    refresh_token: context.refreshToken,
    scope: 'account_info.read files.content.read files.content.write files.metadata.read',
    // Dropbox's legacy uid is a decimal string; the namespace id has that form.
    uid: context.account.rootNamespaceId,
    account_id: accountId,
  });
}

/**
 * Checks client_id and client_secret from the parameters or Basic auth. The secret may be
 * absent, as for PKCE apps; when present it must match.
 */
function checkClient(context: EmulatorContext, params: URLSearchParams): void {
  const clientId = params.get('client_id');
  if (clientId === null) {
    throw oauthError('invalid_request', 'No auth function available for given request');
  }
  const secret = params.get('client_secret');
  const secretOk = secret === null || secretEquals(secret, context.appSecret);
  if (clientId !== context.appKey || !secretOk) {
    throw oauthError('invalid_client', 'Invalid client_id or client_secret');
  }
}

async function collectParams(exchange: Exchange): Promise<URLSearchParams> {
  const params = new URLSearchParams(exchange.url.searchParams);
  const body = await readBody(exchange, MAX_FORM_BYTES);
  // The JavaScript SDK sends `Content-Type: application/json` with no body, so only a body
  // that is not JSON is read as a form.
  const contentType = exchange.req.headers['content-type'] ?? '';
  if (body.length > 0 && !contentType.toLowerCase().startsWith('application/json')) {
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
      params.set(name, value);
    }
  }
  const basic = parseBasicAuth(exchange.req.headers.authorization);
  if (basic !== null) {
    params.set('client_id', basic.user);
    params.set('client_secret', basic.password);
  }
  return params;
}

function parseBasicAuth(header: string | undefined): { user: string; password: string } | null {
  const match = header === undefined ? null : /^Basic +(\S+)$/i.exec(header);
  if (match === null) {
    return null;
  }
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) {
    return null;
  }
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Compares secrets in constant time, so response timing does not reveal a matching prefix. */
function secretEquals(candidate: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(candidate), digest(expected));
}
