/** Public types of the emulator. */

export interface EmulatorOptions {
  /** Served folder; it must exist. */
  dataDir: string;
  /** Listening address; default '127.0.0.1'. */
  host?: string;
  /** Listening port; default 0, which picks a free port. */
  port?: number;
  /** App key (OAuth client_id); default 'emulator-app-key'. */
  appKey?: string;
  /** App secret (OAuth client_secret); default: random per start. */
  appSecret?: string;
  /** The one refresh token the emulator accepts; default: random per start. */
  refreshToken?: string;
  /** Lifetime of issued access tokens in seconds; default 14400 (4 h, as Dropbox issues). */
  accessTokenTtlSeconds?: number;
  /** Allocated space reported by users/get_space_usage, in bytes; default 2 TiB. */
  quotaBytes?: number;
  /** Clock in milliseconds since the epoch, for token expiry; default Date.now. Tests pass a fake. */
  now?: () => number;
}

/** One served request, recorded when the response is finished or aborted. */
export interface CallRecord {
  /** Route name such as 'files/download' or 'oauth2/token'; the URL path for unknown paths. */
  route: string;
  /** Parsed route argument; null for Void routes or when the request failed before parsing. */
  arg: unknown;
  /** The request's Range header, when it had one. */
  range?: string;
  status: number;
  /** Response body bytes written to the socket. */
  bytes: number;
  /** Milliseconds from the request's arrival to the response's end. */
  ms: number;
}

export interface Emulator {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234. */
  url: string;
  port: number;
  appKey: string;
  appSecret: string;
  refreshToken: string;
  /** Returns a copy of the call log. */
  calls(): CallRecord[];
  clearCalls(): void;
  /** Stops listening and destroys open sockets. */
  close(): Promise<void>;
}
