/** State shared by the route handlers of one running emulator. */

import { createHash, randomBytes } from 'node:crypto';
import { AccessTokens } from './access-tokens.js';
import { CallLog } from './call-log.js';
import { DataFolder } from './data-folder.js';
import type { EmulatorState } from './emulator-state.js';
import { FaultTable, validateFaultRule, type FaultRule } from './faults.js';
import { ContentHashCache } from './hash-cache.js';
import { ListingSnapshots } from './list-folder-cursor.js';
import { Shaping } from './shaping.js';
import type { EmulatorOptions } from './types.js';

const DEFAULT_APP_KEY = 'emulator-app-key';
// Dropbox issues short-lived tokens for 4 hours.
const DEFAULT_TOKEN_TTL_SECONDS = 4 * 60 * 60;
const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 4;

export interface Account {
  accountId: string;
  rootNamespaceId: string;
}

export interface EmulatorContext {
  appKey: string;
  appSecret: string;
  refreshToken: string;
  quotaBytes: number;
  account: Account;
  folder: DataFolder;
  hashes: ContentHashCache;
  tokens: AccessTokens;
  snapshots: ListingSnapshots;
  callLog: CallLog;
  faults: FaultTable;
  shaping: Shaping;
  /** Catalog, change journal, watcher, upload sessions, links and OAuth codes. */
  state: EmulatorState;
}

/** Builds the context; `open` creates the emulator state for the context's folder and hashes. */
export async function createContext(
  options: EmulatorOptions,
  open: (folder: DataFolder, hashes: ContentHashCache) => Promise<EmulatorState>,
): Promise<EmulatorContext> {
  const appKey = options.appKey ?? DEFAULT_APP_KEY;
  const appSecret = options.appSecret ?? randomBytes(12).toString('base64url');
  const refreshToken = options.refreshToken ?? randomBytes(32).toString('base64url');
  const ttlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const now = options.now ?? Date.now;
  const folder = new DataFolder(options.dataDir);
  const hashes = new ContentHashCache();
  return {
    appKey,
    appSecret,
    refreshToken,
    quotaBytes: options.quotaBytes ?? DEFAULT_QUOTA_BYTES,
    account: accountFor(appKey),
    folder,
    hashes,
    tokens: new AccessTokens({ appKey, appSecret, refreshToken }, ttlSeconds, now),
    snapshots: new ListingSnapshots(),
    callLog: new CallLog(),
    faults: faultTableWith(options.faults ?? []),
    shaping: new Shaping({
      latencyMs: options.latencyMs ?? 0,
      bandwidthBytesPerSecond: options.bandwidthBytesPerSecond ?? 0,
    }),
    state: await open(folder, hashes),
  };
}

function faultTableWith(rules: readonly FaultRule[]): FaultTable {
  const table = new FaultTable();
  for (const rule of rules) {
    table.add(validateFaultRule(rule));
  }
  return table;
}

/** Derives a stable account from the app key: a 40-character `dbid:` id and a namespace id. */
function accountFor(appKey: string): Account {
  const digest = createHash('sha256').update(`account\0${appKey}`).digest();
  const accountId = 'dbid:' + digest.toString('base64url').slice(0, 35);
  const rootNamespaceId = String(1_000_000_000 + (digest.readUInt32BE(28) % 1_000_000_000));
  return { accountId, rootNamespaceId };
}
