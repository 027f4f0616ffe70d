/** State shared by the route handlers of one running emulator. */

import { createHash, randomBytes } from 'node:crypto';
import { AccessTokens } from './access-tokens.js';
import { CallLog } from './call-log.js';
import { DataFolder } from './data-folder.js';
import { ContentHashCache } from './hash-cache.js';
import { ListingSnapshots } from './list-folder-cursor.js';
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
}

export function createContext(options: EmulatorOptions): EmulatorContext {
  const appKey = options.appKey ?? DEFAULT_APP_KEY;
  const appSecret = options.appSecret ?? randomBytes(12).toString('base64url');
  const refreshToken = options.refreshToken ?? randomBytes(32).toString('base64url');
  const ttlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const now = options.now ?? Date.now;
  return {
    appKey,
    appSecret,
    refreshToken,
    quotaBytes: options.quotaBytes ?? DEFAULT_QUOTA_BYTES,
    account: accountFor(appKey),
    folder: new DataFolder(options.dataDir),
    hashes: new ContentHashCache(),
    tokens: new AccessTokens({ appKey, appSecret, refreshToken }, ttlSeconds, now),
    snapshots: new ListingSnapshots(),
    callLog: new CallLog(),
  };
}

/** Derives a stable account from the app key: a 40-character `dbid:` id and a namespace id. */
function accountFor(appKey: string): Account {
  const digest = createHash('sha256').update(`account\0${appKey}`).digest();
  const accountId = 'dbid:' + digest.toString('base64url').slice(0, 35);
  const rootNamespaceId = String(1_000_000_000 + (digest.readUInt32BE(28) % 1_000_000_000));
  return { accountId, rootNamespaceId };
}
