/**
 * GET /oauth2/authorize: an authorization page that approves at once, for tests of the
 * authorization-code flow. It checks client_id and response_type=code. With a redirect_uri
 * it redirects (302) there with `code` and `state`; without one it returns an HTML page
 * showing the code, as Dropbox does for apps without a redirect URI. A `code_challenge`
 * needs `code_challenge_method=S256`; the plain method is rejected.
 */

import type { EmulatorContext } from './context.js';
import { plainError } from './errors.js';
import { sendBody, type Exchange } from './exchange.js';

export const AUTHORIZE_PATH = '/oauth2/authorize';

/** Serves the page; throws a 400 HttpError naming the invalid parameter. */
export function serveAuthorizePage(context: EmulatorContext, exchange: Exchange): void {
  const params = exchange.url.searchParams;
  const clientId = params.get('client_id');
  if (clientId !== context.appKey) {
    throw plainError(400, `Invalid client_id ${JSON.stringify(clientId)}; use the emulator's app key.`);
  }
  if (params.get('response_type') !== 'code') {
    throw plainError(400, 'Invalid response_type; only "code" is supported.');
  }
  const challenge = params.get('code_challenge');
  if (challenge !== null && params.get('code_challenge_method') !== 'S256') {
    throw plainError(400, 'Invalid code_challenge_method; use "S256".');
  }
  const redirectUri = params.get('redirect_uri');
  const code = context.state.codes.issue(clientId, redirectUri, challenge);
  exchange.arg = { client_id: clientId, redirect_uri: redirectUri };
  if (redirectUri !== null) {
    const target = new URL(redirectUri);
    target.searchParams.set('code', code);
    const state = params.get('state');
    if (state !== null) {
      target.searchParams.set('state', state);
    }
    sendBody(exchange, 302, 'text/plain; charset=utf-8', '', { Location: target.toString() });
    return;
  }
  const html = '<!doctype html><title>Emulator authorization</title>'
    + `<p>Enter this code into your app:</p><p><code id="code">${code}</code></p>\n`;
  sendBody(exchange, 200, 'text/html; charset=utf-8', html);
}
