/**
 * The Dropbox API v2 client: RPC and content-download routes over undici with keep-alive
 * connections per host, an access token from TokenProvider, one timeout on every request and the
 * retry policy of retry.ts. Errors are decoded from the JSON error union, never from text.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { TokenProvider } from '../auth/token-provider.js';
import { ApiError, AuthError, BadRequestError, RetryableStatusError, errorTags } from './errors.js';
import { toHeaderSafeJson } from './header-json.js';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';
import type { FileMetadata } from './types.js';

export interface ClientOptions {
  config: Config;
  /** Per-request limit for the connection, the response headers and each pause in the body. */
  timeoutMs: number;
  log: Logger;
  retry?: RetryPolicy;
  /** Clock for token expiry; tests replace it. */
  now?: () => number;
}

/** Byte range `start..end`, both inclusive, as the HTTP Range header counts. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface Download {
  metadata: FileMetadata;
  /** Offset of the first body byte in the file. */
  offset: number;
  /** Number of body bytes the server announced. */
  length: number;
  body: Readable;
}

/** The result of `files/export`: the export's own metadata, the file's and the bytes. */
export interface ExportedFile {
  export_metadata: { name: string; size: number; export_hash?: string };
  file_metadata: FileMetadata;
  body: Buffer;
}

/** Raised for a 416: the requested range starts at or past the end of the file. */
export class RangeNotSatisfiableError extends ApiError {
  constructor(route: string) {
    super(route, 416, ['range_not_satisfiable'], undefined);
  }
}

interface Attempt {
  url: string;
  route: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  dispatcher?: Dispatcher;
  /** Milliseconds for the response headers when longer than the request timeout. */
  headersTimeoutMs?: number;
}

// The slowest upload rate an upload request is given time for before it times out: the
// response only starts once the whole body has arrived, so the header timeout grows with the
// body. 64 KiB/s is far below any working uplink.
const SLOWEST_UPLOAD_BYTES_PER_MS = 64;

export class DropboxClient {
  readonly #options: ClientOptions;
  readonly #dispatcher: Agent;
  readonly #downloads: Agent;
  readonly #notify: Agent;
  readonly #retry: RetryPolicy;
  readonly tokens: TokenProvider;
  /** Requests sent, by route, for `status` and tests. */
  readonly requestCounts = new Map<string, number>();

  constructor(options: ClientOptions) {
    this.#options = options;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    // An Agent keeps a pool of keep-alive connections per origin. Downloads get an Agent of
    // their own with no connection limit, because each open file may keep a streaming response
    // for as long as it is open. In a shared, bounded pool, files kept open by one program would
    // queue every metadata call and every other download behind them.
    const agentOptions = {
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      connectTimeout: options.timeoutMs,
    };
    this.#dispatcher = new Agent({ ...agentOptions, connections: 32 });
    this.#downloads = new Agent(agentOptions);
    // A longpoll keeps its connection busy for minutes, so it gets a pool of its own too.
    this.#notify = new Agent(agentOptions);
    const { config } = options;
    this.tokens = new TokenProvider({
      tokenUrl: `${config.apiUrl}/oauth2/token`,
      appKey: config.appKey,
      appSecret: config.appSecret,
      refreshToken: config.refreshToken,
      dispatcher: this.#dispatcher,
      timeoutMs: options.timeoutMs,
      log: options.log,
      retry: this.#retry,
      now: options.now,
      // Counted with the API calls, so that a failing token endpoint shows in `status`.
      onRequest: () => this.requestCounts.set('oauth2/token', (this.requestCounts.get('oauth2/token') ?? 0) + 1),
    });
  }

  /**
   * Calls an RPC route and returns its JSON result.
   * @throws ApiError (409 and other JSON errors), BadRequestError (400), AuthError (401 after a
   *   refresh), UnavailableError (retries exhausted).
   */
  async rpc<T>(route: string, arg?: unknown): Promise<T> {
    const attempt: Attempt = {
      url: `${this.#options.config.apiUrl}/2/${route}`,
      route,
      headers: arg === undefined ? {} : { 'content-type': 'application/json' },
      body: arg === undefined ? undefined : JSON.stringify(arg),
    };
    const response = await this.#send(attempt);
    const text = await response.body.text();
    return JSON.parse(text) as T;
  }

  /**
   * Calls an RPC route on the notify host, which takes no Authorization header
   * (`files/list_folder/longpoll`), and returns its JSON result. Sent once, with no retry,
   * because the caller polls in a loop with its own backoff. `timeoutMs` bounds the wait for
   * the response headers and the body, and must exceed the longest time the route may hold the
   * request.
   * @throws ApiError, BadRequestError or RetryableStatusError as `rpc` decodes them, network
   *   errors as undici raises them, and an AbortError when `signal` aborts.
   */
  async notifyRpc<T>(route: string, arg: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<T> {
    const { log } = this.#options;
    const started = performance.now();
    this.requestCounts.set(route, (this.requestCounts.get(route) ?? 0) + 1);
    const response = await request(`${this.#options.config.notifyUrl}/2/${route}`, {
      method: 'POST',
      dispatcher: this.#notify,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(arg),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal: options.signal,
    });
    log.debug({ route, status: response.statusCode, ms: Math.round(performance.now() - started) }, 'http');
    const checked = await this.#checkStatus(route, response);
    return JSON.parse(await checked.body.text()) as T;
  }

  /**
   * Starts a download of `path` (a path, `id:` or `rev:`), optionally of one byte range. The
   * caller must consume or destroy `body`.
   * @throws RangeNotSatisfiableError when `range.start` is at or past the end of the file, and
   *   the errors of `rpc`.
   */
  async download(path: string, range?: ByteRange): Promise<Download> {
    const route = 'files/download';
    const headers: Record<string, string> = { 'dropbox-api-arg': toHeaderSafeJson({ path }) };
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    const response = await this.#send({
      url: `${this.#options.config.contentUrl}/2/${route}`,
      route,
      headers,
      dispatcher: this.#downloads,
    });
    const result = response.headers['dropbox-api-result'];
    if (typeof result !== 'string') {
      response.body.destroy();
      throw new ApiError(route, response.statusCode, ['missing_api_result'], undefined);
    }
    const metadata = JSON.parse(result) as FileMetadata;
    const offset = response.statusCode === 206 ? contentRangeStart(response.headers) : 0;
    const length = Number(response.headers['content-length'] ?? metadata.size - offset);
    return { metadata, offset, length, body: response.body };
  }

  /**
   * Exports a file that cannot be downloaded (a Paper doc) with `files/export` and returns the
   * whole export in memory. `format` is one of the file's `export_info.export_options`;
   * without it Dropbox uses `export_as`.
   * @throws ApiError `non_exportable` or `invalid_export_format`, and the errors of `rpc`.
   */
  async exportFile(path: string, format?: string): Promise<ExportedFile> {
    const route = 'files/export';
    const arg = format === undefined ? { path } : { path, export_format: format };
    const response = await this.#send({
      url: `${this.#options.config.contentUrl}/2/${route}`,
      route,
      headers: { 'dropbox-api-arg': toHeaderSafeJson(arg) },
      dispatcher: this.#downloads,
    });
    const result = response.headers['dropbox-api-result'];
    if (typeof result !== 'string') {
      response.body.destroy();
      throw new ApiError(route, response.statusCode, ['missing_api_result'], undefined);
    }
    const parsed = JSON.parse(result) as Omit<ExportedFile, 'body'>;
    const body = Buffer.from(await response.body.arrayBuffer());
    return { ...parsed, body };
  }

  /**
   * Calls an upload-style route (`files/upload`, `files/upload_session/*`) with `body` as the
   * request bytes and returns its JSON result. A retried attempt sends the same bytes again.
   * @throws the errors of `rpc`.
   */
  async upload<T>(route: string, arg: unknown, body: Buffer): Promise<T> {
    const response = await this.#send({
      url: `${this.#options.config.contentUrl}/2/${route}`,
      route,
      headers: { 'dropbox-api-arg': toHeaderSafeJson(arg), 'content-type': 'application/octet-stream' },
      body,
      headersTimeoutMs: this.#options.timeoutMs + Math.ceil(body.length / SLOWEST_UPLOAD_BYTES_PER_MS),
    });
    return JSON.parse(await response.body.text()) as T;
  }

  /** Ends every connection at once, aborting requests in flight, so shutdown never waits. */
  async close(): Promise<void> {
    await Promise.all([this.#dispatcher.destroy(), this.#downloads.destroy(), this.#notify.destroy()]);
  }

  async #send(attempt: Attempt): Promise<Dispatcher.ResponseData> {
    const { route } = attempt;
    return withRetry(route, this.#retry, this.#options.log, async (attemptNumber) => {
      let token = await this.tokens.accessToken();
      let response = await this.#sendOnce(attempt, token, attemptNumber);
      if (response.statusCode === 401) {
        const error = await readAuthError(response);
        if (error.tag !== 'expired_access_token' && error.tag !== 'invalid_access_token') {
          throw error;
        }
        token = await this.tokens.replaceRejected(token);
        response = await this.#sendOnce(attempt, token, attemptNumber);
        if (response.statusCode === 401) throw await readAuthError(response);
      }
      return this.#checkStatus(route, response);
    });
  }

  async #sendOnce(
    attempt: Attempt,
    token: string,
    attemptNumber: number,
  ): Promise<Dispatcher.ResponseData> {
    const started = performance.now();
    const { log } = this.#options;
    this.requestCounts.set(attempt.route, (this.requestCounts.get(attempt.route) ?? 0) + 1);
    try {
      const response = await request(attempt.url, {
        method: 'POST',
        dispatcher: attempt.dispatcher ?? this.#dispatcher,
        headers: { ...attempt.headers, authorization: `Bearer ${token}` },
        body: attempt.body,
        headersTimeout: attempt.headersTimeoutMs ?? this.#options.timeoutMs,
        bodyTimeout: this.#options.timeoutMs,
      });
      const ms = Math.round(performance.now() - started);
      log.debug({ route: attempt.route, status: response.statusCode, ms, attempt: attemptNumber }, 'http');
      return response;
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      const code = (err as NodeJS.ErrnoException).code;
      log.debug({ route: attempt.route, error: code ?? String(err), ms, attempt: attemptNumber }, 'http');
      throw err;
    }
  }

  async #checkStatus(route: string, response: Dispatcher.ResponseData) {
    const status = response.statusCode;
    if (status >= 200 && status < 300) return response;
    const text = await response.body.text();
    if (status === 416) throw new RangeNotSatisfiableError(route);
    if (status === 429 || status >= 500) {
      throw new RetryableStatusError(route, status, retryAfterMs(response.headers));
    }
    if (status === 400) throw new BadRequestError(route, text);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not every error body is JSON (for example a proxy's 502 page); keep the text.
    }
    const union = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
    throw new ApiError(route, status, errorTags(union), body);
  }
}

async function readAuthError(response: Dispatcher.ResponseData): Promise<AuthError> {
  const text = await response.body.text();
  let tags: string[] = [];
  try {
    tags = errorTags((JSON.parse(text) as { error?: unknown }).error);
  } catch {
    // A 401 without a JSON body still means the token was not accepted.
  }
  const tag = tags[0] ?? 'invalid_access_token';
  return new AuthError(tag, `Dropbox rejected the access token (${tags.join('/') || tag})`);
}

function retryAfterMs(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const value = Number(headers['retry-after']);
  return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
}

function contentRangeStart(headers: Dispatcher.ResponseData['headers']): number {
  const value = String(headers['content-range'] ?? '');
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value);
  if (!match) throw new ApiError('files/download', 206, ['bad_content_range'], value);
  return Number(match[1]);
}
