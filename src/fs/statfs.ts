/**
 * statfs returns figures from `users/get_space_usage`, cached so that `df` and file managers,
 * which call it often, do not cost a request each. Once a value is known it is returned at once, and a stale
 * one is refreshed in the background. Before the first value arrives, statfs waits at most
 * FIRST_FETCH_WAIT_MS for it and otherwise returns a placeholder, so statfs never waits on a
 * slow or unreachable network.
 */
import type { DropboxClient } from '../dropbox/client.js';
import type { SpaceUsage } from '../dropbox/types.js';
import type { Logger } from '../log/logger.js';
import { describeError } from './errno.js';

export interface Statfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

const SPACE_TTL_MS = 60_000;
// How long statfs waits for the first quota fetch before it returns the placeholder.
const FIRST_FETCH_WAIT_MS = 250;
// The placeholder size, 1 PiB with nothing used: large, so no program refuses to copy out of
// the mount for lack of room, and fixed, so it is easy to recognize in `df`.
const PLACEHOLDER_BYTES = 2 ** 50;
const BASE_BLOCK_BYTES = 4096;
// fuse-native packs statfs fields as uint32, so the block size grows until the block count fits.
const UINT32_MAX = 0xffffffff;
// Dropbox limits each path component to 255 characters.
const NAME_MAX = 255;
// Dropbox has no inode limit; this reports plenty free without overflowing uint32.
const FILES_REPORTED = 1_000_000_000;

export class SpaceUsageCache {
  readonly #client: DropboxClient;
  readonly #log: Logger;
  #value: Statfs | undefined;
  #fetchedAt = 0;
  #refreshing: Promise<Statfs> | undefined;

  constructor(client: DropboxClient, log: Logger) {
    this.#client = client;
    this.#log = log;
  }

  /** Returns the cached value, the first fetch if it ends within FIRST_FETCH_WAIT_MS, or the placeholder. */
  async statfs(): Promise<Statfs> {
    if (this.#value === undefined) return this.#firstValue();
    if (Date.now() - this.#fetchedAt > SPACE_TTL_MS) this.refreshInBackground();
    return this.#value;
  }

  /** Starts a fetch unless one is running; a failure is logged, never thrown. */
  refreshInBackground(): void {
    this.#refresh().catch((err: unknown) => {
      this.#log.warn({ err: describeError(err) }, 'space usage refresh failed');
    });
  }

  async #firstValue(): Promise<Statfs> {
    const fetched = this.#refresh();
    fetched.catch((err: unknown) => {
      this.#log.warn({ err: describeError(err) }, 'space usage fetch failed');
    });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, FIRST_FETCH_WAIT_MS, undefined);
    });
    const value = await Promise.race([fetched.catch(() => undefined), waited]);
    clearTimeout(timer);
    if (value !== undefined) return value;
    this.#log.debug({ bytes: PLACEHOLDER_BYTES }, 'space usage not known yet; statfs returns a placeholder');
    return placeholderStatfs();
  }

  #refresh(): Promise<Statfs> {
    this.#refreshing ??= this.#client
      .rpc<SpaceUsage>('users/get_space_usage')
      .then((usage) => {
        this.#value = toStatfs(usage);
        this.#fetchedAt = Date.now();
        return this.#value;
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }
}

/** Returns the statfs result for while no quota is known: PLACEHOLDER_BYTES, all of it free. */
export function placeholderStatfs(): Statfs {
  return toStatfs({ used: 0, allocation: { '.tag': 'individual', allocated: PLACEHOLDER_BYTES } });
}

/** Converts a space usage result; usage above the quota reports zero free, never a negative. */
export function toStatfs(usage: SpaceUsage): Statfs {
  const { allocated, used } = allocation(usage);
  let blockBytes = BASE_BLOCK_BYTES;
  while (Math.ceil(Math.max(allocated, used) / blockBytes) > UINT32_MAX) blockBytes *= 2;
  const blocks = Math.ceil(allocated / blockBytes);
  const free = Math.max(0, Math.floor((allocated - used) / blockBytes));
  return {
    bsize: blockBytes,
    frsize: blockBytes,
    blocks,
    bfree: free,
    bavail: free,
    files: FILES_REPORTED,
    ffree: FILES_REPORTED,
    favail: FILES_REPORTED,
    fsid: 0,
    flag: 0,
    namemax: NAME_MAX,
  };
}

function allocation(usage: SpaceUsage): { allocated: number; used: number } {
  const { allocation: alloc } = usage;
  if (alloc['.tag'] === 'individual') return { allocated: alloc.allocated, used: usage.used };
  if (alloc['.tag'] === 'team') {
    // A member limit, when set, is what this user can fill; otherwise the team's pool counts.
    const limit = alloc.user_within_team_space_allocated;
    if (limit > 0) return { allocated: limit, used: usage.used };
    return { allocated: alloc.allocated, used: alloc.used };
  }
  return { allocated: usage.used, used: usage.used };
}
