/**
 * Access tokens from a refresh token. A token is refreshed ahead of its expiry and once more when
 * Dropbox rejects it; concurrent callers share one refresh request, so a burst of FUSE ops after
 * an expiry costs one call to `oauth2/token`.
 */
import { request, type Dispatcher } from 'undici';
import { AuthError, RetryableStatusError } from '../dropbox/errors.js';
import { withRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../dropbox/retry.js';
import type { Logger } from '../log/logger.js';
import type { Secret } from '../log/secret.js';
import type { TokenResponse } from '../dropbox/types.js';

// The JS SDK refreshes when less than 300 s are left; short-lived test tokens use half their life.
const REFRESH_MARGIN_MS = 300_000;

export interface TokenProviderOptions {
  tokenUrl: string;
  appKey: string;
  appSecret?: Secret;
  refreshToken: Secret;
  dispatcher: Dispatcher;
  timeoutMs: number;
  log: Logger;
  retry?: RetryPolicy;
  now?: () => number;
  /** Called before every request to the token endpoint, retries included. */
  onRequest?: () => void;
}

interface AccessToken {
  value: string;
  refreshAtMs: number;
}

export class TokenProvider {
  readonly #options: TokenProviderOptions;
  readonly #now: () => number;
  #token: AccessToken | undefined;
  #refreshing: Promise<string> | undefined;
  refreshCount = 0;

  constructor(options: TokenProviderOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Returns a token that is not near its expiry, refreshing first when needed. */
  async accessToken(): Promise<string> {
    const token = this.#token;
    if (token && this.#now() < token.refreshAtMs) return token.value;
    return this.#refreshOnce();
  }

  /**
   * Returns a token other than `rejected`: the current one if another caller already refreshed,
   * otherwise a new one.
   */
  async replaceRejected(rejected: string): Promise<string> {
    if (this.#token && this.#token.value !== rejected) return this.#token.value;
    this.#token = undefined;
    return this.#refreshOnce();
  }

  #refreshOnce(): Promise<string> {
    this.#refreshing ??= this.#exchange().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #exchange(): Promise<string> {
    const { log } = this.#options;
    const started = this.#now();
    const body = await withRetry('oauth2/token', this.#options.retry ?? DEFAULT_RETRY_POLICY, log, () =>
      this.#post(),
    );
    const lifetimeMs = (body.expires_in ?? 14_400) * 1000;
    const marginMs = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
    this.#token = { value: body.access_token, refreshAtMs: started + lifetimeMs - marginMs };
    this.refreshCount++;
    log.debug({ expiresInS: body.expires_in }, 'access token refreshed');
    return body.access_token;
  }

  async #post(): Promise<TokenResponse> {
    const { tokenUrl, appKey, appSecret, refreshToken, dispatcher, timeoutMs } = this.#options;
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken.reveal(),
      client_id: appKey,
    });
    if (appSecret) form.set('client_secret', appSecret.reveal());
    this.#options.onRequest?.();
    const response = await request(tokenUrl, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode === 200) return parseTokenResponse(text);
    if (response.statusCode === 429 || response.statusCode >= 500) {
      const retryAfter = Number(response.headers['retry-after']);
      const retryAfterMs = Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined;
      throw new RetryableStatusError('oauth2/token', response.statusCode, retryAfterMs);
    }
    throw tokenError(response.statusCode, text);
  }
}

function parseTokenResponse(text: string): TokenResponse {
  const body = JSON.parse(text) as Partial<TokenResponse>;
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new AuthError('malformed_response', 'oauth2/token returned no access_token');
  }
  return body as TokenResponse;
}

function tokenError(status: number, text: string): AuthError {
  let tag = `http_${status}`;
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') tag = parsed.error;
  } catch {
    // A non-JSON body keeps the status as the tag.
  }
  if (tag === 'invalid_grant') {
    return new AuthError(
      tag,
      'Dropbox rejected the refresh token (invalid_grant): it was revoked or is wrong; get a new ' +
        'one with `dropbox-mount login --app-key APP_KEY --force`, which rewrites the config file',
    );
  }
  if (tag === 'invalid_client') {
    return new AuthError(
      tag,
      'Dropbox rejected the app credentials (invalid_client): check appKey and appSecret in the config',
    );
  }
  return new AuthError(tag, `oauth2/token failed with HTTP ${status} (${tag})`);
}
