/** Public types of the emulator. */

import type { AccountSettings } from './control-account.js';
import type { ActiveFaultRule, FaultRule } from './faults.js';
import type { ShapingSettings } from './shaping.js';

export type { AccountSettings, ActiveFaultRule, FaultRule, ShapingSettings };

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
  /**
   * Allocated space in bytes, reported by users/get_space_usage and checked by uploads and
   * copies; default 2 TiB. POST /_emulator/account changes it while running.
   */
  quotaBytes?: number;
  /** Clock in milliseconds since the epoch, for token expiry; default Date.now. Tests pass a fake. */
  now?: () => number;
  /**
   * Folder for the catalog (ids, revs), earlier revisions and temporary files; default a
   * folder keyed by the data folder's real path under $XDG_STATE_HOME or os.tmpdir().
   */
  stateDir?: string;
  /** Bytes of earlier file revisions kept for `rev:` paths; default 512 MiB. */
  maxRevisionBytes?: number;
  /** Interval of the full scan for changes made in the data folder, in ms; default 2000, 0 for none. */
  scanIntervalMs?: number;
  /**
   * Upper bound of a longpoll's real wait in ms. The `timeout` argument is still checked
   * against 30..480 s; tests pass a few hundred ms here. Default: no bound.
   */
  longpollMaxWaitMs?: number;
  /** Lifetime of files/get_temporary_link links, in seconds; default 14400 (4 h, as Dropbox). */
  temporaryLinkTtlSeconds?: number;
  /** Fault rules in force from the start; throws InvalidFaultRuleError for an invalid one. */
  faults?: FaultRule[];
  /** Added round-trip time per request, in milliseconds; default 0. */
  latencyMs?: number;
  /** Cap on request and response body bytes together, in bytes per second; default 0 (none). */
  bandwidthBytesPerSecond?: number;
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
  /** Fault kind that acted on the call, e.g. '429', 'black-hole' or 'cut-after'. */
  fault?: string;
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
  /** Adds a fault rule; throws InvalidFaultRuleError for an invalid one. */
  addFault(rule: FaultRule): ActiveFaultRule;
  /** Returns the rules in force with their remaining counts. */
  faults(): ActiveFaultRule[];
  clearFaults(): void;
  /** Changes the given shaping settings and keeps the others. */
  setShaping(settings: Partial<ShapingSettings>): void;
  /**
   * Changes the given account settings (quota, read-only folders) and keeps the others;
   * throws InvalidAccountSettingsError for an invalid one. Same as POST /_emulator/account.
   */
  setAccountSettings(settings: Partial<AccountSettings>): void;
  /** Makes every list_folder cursor answer 409 `reset` (the "cursor reset" fault). */
  invalidateCursors(): void;
  /** Scans the data folder now and journals every change made there outside the API. */
  rescan(): Promise<void>;
  /** Stops listening and destroys open sockets. */
  close(): Promise<void>;
}
