/**
 * Errors raised by the Dropbox client. Callers decide on `tags` (the path of union tags in the
 * error body, such as `['path', 'not_found']`) and never on message text, because Dropbox's
 * documentation warns that summaries and messages may change.
 */
import { DropboxMountError } from '../errors.js';

/** A 409 endpoint error, or any other Dropbox response that carries a JSON error union. */
export class ApiError extends DropboxMountError {
  readonly status: number;
  readonly route: string;
  readonly tags: readonly string[];
  readonly body: unknown;

  constructor(route: string, status: number, tags: readonly string[], body: unknown) {
    const summary = tags.length > 0 ? tags.join('/') : `HTTP ${status}`;
    super('DROPBOX_API', `${route} failed: ${summary}`);
    this.route = route;
    this.status = status;
    this.tags = tags;
    this.body = body;
  }

  has(tag: string): boolean {
    return this.tags.includes(tag);
  }
}

/** A 400 response: the request itself was malformed. Not retried, because it would fail again. */
export class BadRequestError extends DropboxMountError {
  readonly route: string;

  constructor(route: string, text: string) {
    super('DROPBOX_BAD_REQUEST', `${route} rejected the request: ${text.slice(0, 300)}`);
    this.route = route;
  }
}

/** A 401 response, or a refresh token that Dropbox no longer accepts. */
export class AuthError extends DropboxMountError {
  readonly tag: string;

  constructor(tag: string, message: string) {
    super('DROPBOX_AUTH', message);
    this.tag = tag;
  }
}

/** Retries ran out on 5xx, 429 or network errors. `cause` is the last failure. */
export class UnavailableError extends DropboxMountError {
  readonly route: string;

  constructor(route: string, attempts: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('DROPBOX_UNAVAILABLE', `${route} failed after ${attempts} attempts: ${reason}`, {
      cause,
    });
    this.route = route;
  }
}

/** A retryable HTTP status (5xx, 429), kept apart so the retry loop can tell it from the rest. */
export class RetryableStatusError extends DropboxMountError {
  readonly status: number;
  readonly retryAfterMs: number | undefined;

  constructor(route: string, status: number, retryAfterMs: number | undefined) {
    super('DROPBOX_RETRYABLE', `${route} answered HTTP ${status}`);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Extracts the chain of union tags from a Dropbox error union. A member that is itself a union is
 * nested under a key named like its tag. A struct member is inlined instead, so when the tag's
 * key is absent the walk follows the first inlined field that is a union (`reason` in
 * UploadWriteFailed).
 */
export function errorTags(error: unknown): string[] {
  const tags: string[] = [];
  let node: unknown = error;
  while (isUnion(node)) {
    const tag = node['.tag'];
    tags.push(tag);
    const nested = node[tag];
    if (isUnion(nested)) {
      node = nested;
      continue;
    }
    node = Object.entries(node).find(([key, value]) => key !== '.tag' && isUnion(value))?.[1];
  }
  return tags;
}

function isUnion(value: unknown): value is Record<string, unknown> & { '.tag': string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)['.tag'] === 'string'
  );
}
