/**
 * Starts the daemon: config to token to client to cache to filesystem to FUSE, in that order,
 * checking each before the next so that a bad token or root fails before anything is mounted.
 */
import type { Config } from './config/config.js';
import { DropboxClient } from './dropbox/client.js';
import type { Metadata } from './dropbox/types.js';
import { MetadataCache } from './cache/metadata-cache.js';
import { DropboxFilesystem } from './fs/filesystem.js';
import { mount, type Mounted } from './fuse/mount.js';
import type { Logger } from './log/logger.js';
import { DropboxMountError } from './errors.js';
import { ApiError } from './dropbox/errors.js';

export interface DaemonOptions {
  config: Config;
  mountpoint: string;
  log: Logger;
  requestTimeoutMs: number;
  dirCacheTtlMs: number;
  maxCacheEntries: number;
  attrTimeoutSeconds: number;
  opDeadlineMs: number;
  fileMode: number;
  dirMode: number;
  memoryBudgetBytes: number;
}

export interface Daemon {
  client: DropboxClient;
  fs: DropboxFilesystem;
  stop(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { config, log } = options;
  const client = new DropboxClient({ config, timeoutMs: options.requestTimeoutMs, log });
  try {
    await client.tokens.accessToken();
    const rootPath = await resolveRoot(client, config.root);
    log.info({ root: config.root || '(whole account)', rootPath: rootPath || '/' }, 'root folder found');
    const cache = new MetadataCache({
      client,
      rootPath,
      ttlMs: options.dirCacheTtlMs,
      maxEntries: options.maxCacheEntries,
      dirMtimeMs: Date.now(),
    });
    const fs = new DropboxFilesystem({
      client,
      cache,
      log,
      fileMode: options.fileMode,
      dirMode: options.dirMode,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      memoryBudgetBytes: options.memoryBudgetBytes,
    });
    const mounted: Mounted = await mount({
      mountpoint: options.mountpoint,
      fs,
      log,
      attrTimeoutSeconds: options.attrTimeoutSeconds,
      opDeadlineMs: options.opDeadlineMs,
      fsname: `dropbox:${rootPath || '/'}`,
    });
    return {
      client,
      fs,
      stop: async () => {
        await mounted.unmount();
        await client.close();
      },
    };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/**
 * Returns the Dropbox path of the mount root. An `id:` root is resolved to its current path
 * once, here.
 * @throws DropboxMountError when the root does not exist or is not a folder.
 */
async function resolveRoot(client: DropboxClient, root: string): Promise<string> {
  if (root === '') return '';
  let metadata: Metadata;
  try {
    metadata = await client.rpc<Metadata>('files/get_metadata', { path: root });
  } catch (err) {
    if (err instanceof ApiError && err.has('not_found')) {
      throw new DropboxMountError('ROOT_NOT_FOUND', `root folder ${root} was not found in Dropbox; check "root" in the config or --root`);
    }
    throw err;
  }
  if (metadata['.tag'] !== 'folder') {
    throw new DropboxMountError('ROOT_NOT_FOLDER', `root ${root} is a ${metadata['.tag']}, not a folder; mount its parent folder instead`);
  }
  return metadata.path_display ?? metadata.path_lower ?? root;
}
