/**
 * The retry policy for every Dropbox request: exponential backoff with full jitter on network
 * errors and 5xx, and the server's own `Retry-After` on 429. Anything else is final at once.
 */
import type { Logger } from '../log/logger.js';
import { RetryableStatusError, UnavailableError } from './errors.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
};

// Errors undici and the socket layer raise when a connection fails, stalls or is cut. They are
// worth another attempt on a fresh connection.
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Tells whether an error came from the network rather than from Dropbox's answer. */
export function isNetworkError(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code !== undefined && NETWORK_ERROR_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

/** Returns how long to wait before attempt `attempt + 1`, given the error of attempt `attempt`. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, err: unknown): number {
  if (err instanceof RetryableStatusError && err.retryAfterMs !== undefined) {
    return err.retryAfterMs;
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * Runs `attemptFn` until it succeeds, fails with an error that is not retryable, or runs out of
 * attempts.
 * @throws the final error as it is, or UnavailableError once retries are exhausted.
 */
export async function withRetry<T>(
  route: string,
  policy: RetryPolicy,
  log: Logger,
  attemptFn: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFn(attempt);
    } catch (err) {
      const retryable = err instanceof RetryableStatusError || isNetworkError(err);
      if (!retryable) throw err;
      if (attempt >= policy.maxAttempts) {
        log.warn({ route, attempts: attempt, err: describe(err) }, 'request retries exhausted');
        throw new UnavailableError(route, attempt, err);
      }
      const delayMs = retryDelayMs(policy, attempt, err);
      log.debug({ route, attempt, delayMs, err: describe(err) }, 'retrying request');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}
