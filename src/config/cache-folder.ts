/**
 * The default cache folder, which contains the write spool: one per account and root, so that two
 * mounts of different folders never share pending uploads, and a restart with the same config
 * finds its own.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Config } from './config.js';

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

/** `$XDG_CACHE_HOME/dropbox-mount/<hash of API address, app key and root>`. */
export function defaultCacheFolder(config: Config): string {
  const identity = createHash('sha256').update(`${config.apiUrl}\0${config.appKey}\0${config.root}`).digest('hex');
  return join(cacheHome(), 'dropbox-mount', identity.slice(0, 16));
}

export function defaultCacheFolderHint(): string {
  return join(cacheHome(), 'dropbox-mount', '<account and root>');
}
