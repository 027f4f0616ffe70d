/**
 * Errors that become HTTP responses, in the shapes Dropbox sends:
 * - 400 plain text `Error in call to API function "<route>": <detail>` for bad input,
 * - 401 JSON AuthError with `WWW-Authenticate: Dropbox-API`,
 * - 409 JSON `{error_summary, error}` for route errors,
 * - 400 JSON `{error, error_description}` from the OAuth token endpoint.
 */

import { randomInt } from 'node:crypto';

export type ErrorUnion = { '.tag': string; [field: string]: unknown };

/** An error with a complete HTTP response: status, headers and body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly contentType: string,
    readonly body: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}: ${body}`);
    this.name = 'HttpError';
  }
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

/**
 * Creates a 400 with Dropbox's plain-text wording for bad input to `route`. The text names a
 * versioned route with a colon, as Dropbox's server does: `files/upload_session/append:2`
 * for the URL `files/upload_session/append_v2`.
 */
export function badInput(route: string, detail: string): HttpError {
  const name = route.replace(/_v(\d+)$/, ':$1');
  return new HttpError(400, TEXT, `Error in call to API function "${name}": ${detail}`);
}

/** Creates a plain-text error that is not about one API route (404, 405, 416). */
export function plainError(status: number, text: string, headers?: Record<string, string>) {
  return new HttpError(status, TEXT, text, headers);
}

/** Creates a 409 route error carrying the Stone union `error`. */
export function routeError(error: ErrorUnion): HttpError {
  const body = { error_summary: errorSummary(error), error };
  return new HttpError(409, JSON_TYPE, JSON.stringify(body));
}

/** Creates the 409 `{".tag":"path","path":{".tag":<lookupTag>}}` that every read route uses. */
export function pathLookupError(lookupTag: string): HttpError {
  return routeError({ '.tag': 'path', path: { '.tag': lookupTag } });
}

/** Creates a 401 AuthError such as `invalid_access_token` or `expired_access_token`. */
export function authError(tag: string): HttpError {
  const error = { '.tag': tag };
  const body = JSON.stringify({ error_summary: errorSummary(error), error });
  return new HttpError(401, JSON_TYPE, body, { 'WWW-Authenticate': 'Dropbox-API' });
}

/** Creates a 400 OAuth 2 error for the token endpoint, e.g. `invalid_grant`. */
export function oauthError(error: string, description: string): HttpError {
  const body = JSON.stringify({ error, error_description: description });
  return new HttpError(400, JSON_TYPE, body);
}

/**
 * Builds `error_summary`: the union tags along the error path joined by '/', a trailing '/',
 * then 0 to 3 dots. Dropbox adds the random dots so that clients decode the `error` union
 * instead of parsing the summary.
 */
export function errorSummary(error: ErrorUnion): string {
  const tags: string[] = [];
  let node: unknown = error;
  while (isUnion(node)) {
    const tag = node['.tag'];
    tags.push(tag);
    // A struct member's fields are inlined next to `.tag` (UploadWriteFailed carries its
    // WriteError in `reason`), so the path continues at the first nested union.
    node = node[tag] ?? Object.values(node).find(isUnion);
  }
  return tags.join('/') + '/' + '.'.repeat(randomInt(4));
}

function isUnion(value: unknown): value is ErrorUnion {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  return typeof (value as Record<string, unknown>)['.tag'] === 'string';
}
