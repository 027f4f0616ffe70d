/**
 * The emulator's mutable account state beyond the request context: the catalog and journal
 * (AccountState), the data-folder watcher, upload sessions, temporary links and OAuth codes.
 */

import { AccountState } from './account-state.js';
import type { DataFolder } from './data-folder.js';
import { DataWatcher, DEFAULT_SCAN_INTERVAL_MS } from './data-watcher.js';
import type { ContentHashCache } from './hash-cache.js';
import { AuthorizationCodes } from './oauth-codes.js';
import { DEFAULT_MAX_REVISION_BYTES } from './revisions.js';
import { defaultStateDir, removeOrphanedStateDirs } from './state-folder.js';
import { TemporaryLinks } from './temporary-links.js';
import type { EmulatorOptions } from './types.js';
import { UploadSessions } from './upload-sessions.js';

// Dropbox's temporary links live 4 hours.
const DEFAULT_LINK_TTL_SECONDS = 4 * 60 * 60;

export interface EmulatorState {
  account: AccountState;
  watcher: DataWatcher;
  sessions: UploadSessions;
  links: TemporaryLinks;
  codes: AuthorizationCodes;
  /** Upper bound of a longpoll's real wait in ms, whatever its `timeout`; undefined for none. */
  longpollMaxWaitMs: number | undefined;
  /** The emulator's base URL, set once it listens; temporary links start with it. */
  baseUrl: string;
}

/** Opens the state folder, scans the data folder and starts watching it. */
export async function openEmulatorState(
  options: EmulatorOptions,
  folder: DataFolder,
  hashes: ContentHashCache,
  onError: (error: unknown) => void,
): Promise<EmulatorState> {
  const now = options.now ?? Date.now;
  let stateDir = options.stateDir;
  if (stateDir === undefined) {
    stateDir = await defaultStateDir(options.dataDir);
    await removeOrphanedStateDirs(stateDir);
  }
  const account = await AccountState.open(folder, hashes, {
    stateDir,
    maxRevisionBytes: options.maxRevisionBytes ?? DEFAULT_MAX_REVISION_BYTES,
    now,
  });
  const watcher = new DataWatcher(account, options.scanIntervalMs ?? DEFAULT_SCAN_INTERVAL_MS, onError);
  watcher.start();
  return {
    account,
    watcher,
    sessions: new UploadSessions(account.stateFolder.tmpDir, now),
    links: new TemporaryLinks((options.temporaryLinkTtlSeconds ?? DEFAULT_LINK_TTL_SECONDS) * 1000, now),
    codes: new AuthorizationCodes(now),
    longpollMaxWaitMs: options.longpollMaxWaitMs,
    baseUrl: '',
  };
}

/** Stops the watcher, removes session files and saves the catalog. */
export async function closeEmulatorState(state: EmulatorState): Promise<void> {
  state.watcher.stop();
  await state.sessions.clear();
  await state.account.close();
}
