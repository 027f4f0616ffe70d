/**
 * Bearer-token checks for API routes, in the order and wording Dropbox uses. A missing or
 * non-Bearer Authorization is a 400 plain-text error. A token with characters that no
 * Dropbox token has is 400 "malformed". An unknown token is 401 `invalid_access_token`, and
 * an expired one is 401 `expired_access_token`.
 */

import type { EmulatorContext } from './context.js';
import { authError, badInput } from './errors.js';
import type { Exchange } from './exchange.js';
import type { Route } from './route-table.js';

const BEARER = /^Bearer +(\S+)$/i;

/** Throws the HttpError for a request that may not call `route`. */
export function authenticate(context: EmulatorContext, exchange: Exchange, route: Route): void {
  const value = exchange.req.headers.authorization ?? exchange.url.searchParams.get('authorization');
  if (route.auth === 'noauth') {
    if (value !== null && value !== undefined) {
      const detail = 'Your request includes an Authorization header, but this function does not use it.';
      throw badInput(route.name, detail);
    }
    return;
  }
  if (value === null || value === undefined) {
    throw badInput(route.name, 'Must provide HTTP header "Authorization" or URL parameter "authorization".');
  }
  const bearer = BEARER.exec(value);
  if (bearer === null) {
    throw badInput(
      route.name,
      `Invalid authorization value in HTTP header "Authorization": ${JSON.stringify(value)}.  ` +
        'Expecting "Bearer <oauth2-access-token>".',
    );
  }
  switch (context.tokens.check(bearer[1] as string)) {
    case 'valid':
      return;
    case 'malformed':
      throw badInput(route.name, 'The given OAuth 2 access token is malformed.');
    case 'invalid':
      throw authError('invalid_access_token');
    case 'expired':
      throw authError('expired_access_token');
  }
}
