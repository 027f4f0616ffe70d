/**
 * Starts the daemon: config to token to client to cache to filesystem to FUSE, in that order,
 * checking each before the next so that a bad token or root fails before anything is mounted.
 */
import type { Config } from './config/config.js';
import { DropboxClient } from './dropbox/client.js';
import type { Metadata } from './dropbox/types.js';
import { MetadataCache } from './cache/metadata-cache.js';
import { ChangeWatcher } from './cache/change-watcher.js';
import { restoreSnapshot, snapshotFileOf, SnapshotWriter } from './cache/metadata-snapshot.js';
import { DropboxFilesystem } from './fs/filesystem.js';
import { SpoolStore, unlockFolder } from './write/spool-store.js';
import { MtimeOverlay } from './write/mtime-overlay.js';
import { DirtyFiles } from './write/dirty-files.js';
import { Namespace } from './write/namespace.js';
import { mount, type Mounted } from './fuse/mount.js';
import type { Logger } from './log/logger.js';
import { DropboxMountError } from './errors.js';
import { ApiError } from './dropbox/errors.js';
import { describeError } from './fs/errno.js';
import { applyUmask, type MountOptionSet } from './fuse/mount-options.js';
import { collectStatus } from './status/collect.js';
import type { LastErrorRecorder } from './status/last-error.js';
import { startStatusServer, type StatusServer } from './status/server.js';
import type { StatusSnapshot } from './status/snapshot.js';

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
  /** Watch for remote changes with longpoll and apply them to the cache; default true. */
  poll?: boolean;
  /**
   * Entries a whole-tree listing at mount may fill the cache with; 0 turns the prefetch off.
   * Default 100,000.
   */
  prefetchLimit?: number;
  /** The `-o` options: FUSE flags, and the owner and umask applied to the reported stats. */
  mountOptions?: MountOptionSet;
  /** Path of the status socket; no socket when undefined. */
  statusSocketPath?: string;
  /** The recorder the logger feeds, whose last failure the status shows. */
  lastError?: LastErrorRecorder;
  /** Leave out files that cannot be downloaded (Paper docs) instead of listing their exports. */
  hideNonDownloadable?: boolean;
  /** File or folder that keeps the metadata cache and the change cursor across restarts. */
  metadataCachePath?: string;
  /** Every change fails with EROFS; default false. */
  readOnly?: boolean;
  /** Folder of the write spool and saved mtimes; required unless read-only. */
  cacheFolder?: string;
  /** Bytes the write spool may hold; default 10 GiB. */
  cacheMaxBytes?: number;
  /** Milliseconds close and fsync may wait for a commit; default `opDeadlineMs`. */
  commitDeadlineMs?: number;
}

const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
// How long shutdown waits for uploads of closed files before it leaves them to the next start.
const SHUTDOWN_UPLOAD_GRACE_MS = 10_000;

const DEFAULT_PREFETCH_LIMIT = 100_000;

export interface Daemon {
  client: DropboxClient;
  fs: DropboxFilesystem;
  /** Returns the figures that `dropbox-mount status` prints. */
  status(): StatusSnapshot;
  stop(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { config, log } = options;
  const startedAt = performance.now();
  const mountOptions = options.mountOptions ?? { allowOther: false, defaultPermissions: false };
  let bytesRead = 0;
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
      nonDownloadable: options.hideNonDownloadable ? 'hide' : 'export',
    });
    const poll = options.poll ?? true;
    const snapshotFile =
      options.metadataCachePath === undefined ? undefined : await snapshotFileOf(options.metadataCachePath);
    const snapshotIdentity = { apiUrl: config.apiUrl, root: config.root };
    if (snapshotFile !== undefined && !poll) {
      log.warn({ file: snapshotFile }, 'the metadata snapshot needs the change watcher; --no-poll leaves it unused');
    }
    // Loaded before the mount, so that nothing is served from a snapshot that is not caught up.
    const snapshotCursor =
      snapshotFile !== undefined && poll
        ? await restoreSnapshot({ file: snapshotFile, identity: snapshotIdentity, cache, client, log })
        : undefined;
    const writes = options.readOnly ? undefined : await startWrites(options, client, cache);
    const fs = new DropboxFilesystem({
      client,
      cache,
      log,
      fileMode: applyUmask(options.fileMode, mountOptions),
      dirMode: applyUmask(options.dirMode, mountOptions),
      uid: mountOptions.uid ?? process.getuid?.() ?? 0,
      gid: mountOptions.gid ?? process.getgid?.() ?? 0,
      memoryBudgetBytes: options.memoryBudgetBytes,
      writes,
    });
    const mounted: Mounted = await mount({
      mountpoint: options.mountpoint,
      fs,
      log,
      attrTimeoutSeconds: options.attrTimeoutSeconds,
      opDeadlineMs: options.opDeadlineMs,
      fsname: `dropbox:${rootPath || '/'}`,
      allowOther: mountOptions.allowOther,
      defaultPermissions: mountOptions.defaultPermissions,
      commitDeadlineMs: options.commitDeadlineMs,
      onBytesRead: (bytes) => {
        bytesRead += bytes;
      },
    });
    // Fetches the quota now, in the background, so that statfs usually has a value to return.
    void fs.statfs();
    const status = () =>
      collectStatus({
        mountpoint: options.mountpoint,
        startedAt,
        client,
        cache,
        fs,
        bytesRead: () => bytesRead,
        lastError: options.lastError,
      });
    let statusServer: StatusServer | undefined;
    if (options.statusSocketPath !== undefined) {
      try {
        statusServer = await startStatusServer(options.statusSocketPath, status, log);
      } catch (err) {
        // The mount works without the socket, so a failure here only loses `status`.
        log.warn({ err: describeError(err), socket: options.statusSocketPath }, 'status socket not available');
      }
    }
    const prefetchCursor =
      snapshotCursor !== undefined
        ? Promise.resolve(snapshotCursor)
        : startPrefetch(cache, options.prefetchLimit ?? DEFAULT_PREFETCH_LIMIT, log);
    let watcher: ChangeWatcher | undefined;
    let snapshotWriter: SnapshotWriter | undefined;
    if (poll) {
      const rootId = config.root.startsWith('id:') ? config.root : undefined;
      const activeWatcher = new ChangeWatcher({ client, cache, rootPath, rootId, log });
      watcher = activeWatcher;
      watcher.start(prefetchCursor);
      if (snapshotFile !== undefined) {
        snapshotWriter = new SnapshotWriter({
          file: snapshotFile,
          identity: snapshotIdentity,
          cache,
          cursor: () => activeWatcher.cursor,
          log,
        });
      }
    }
    return {
      client,
      fs,
      status,
      stop: async () => {
        await statusServer?.close().catch((err: unknown) => {
          log.warn({ err: describeError(err) }, 'status socket removal failed');
        });
        await watcher?.stop();
        await snapshotWriter?.stop();
        await mounted.unmount();
        await writes?.files.stop(SHUTDOWN_UPLOAD_GRACE_MS);
        await client.close();
        if (options.cacheFolder !== undefined && writes !== undefined) await unlockFolder(options.cacheFolder);
      },
    };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** Opens the spool and the mtime overlay, and resumes uploads an earlier run left pending. */
async function startWrites(options: DaemonOptions, client: DropboxClient, cache: MetadataCache) {
  const { log, cacheFolder } = options;
  if (cacheFolder === undefined) throw new DropboxMountError('NO_CACHE_FOLDER', 'a writable mount needs a cache folder');
  const store = await SpoolStore.open(cacheFolder, options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES, log);
  const mtimes = await MtimeOverlay.load(cacheFolder, log);
  const files = new DirtyFiles({ client, cache, store, mtimes, log });
  const resumed = await files.recover();
  if (resumed > 0) log.info({ files: resumed }, 'resuming uploads left by an earlier run');
  const namespace = new Namespace({ client, cache, files, log });
  return { files, namespace };
}

/**
 * Starts the whole-tree prefetch in the background and returns its final cursor, or undefined
 * when it is off, over its limit or failed. Lookups wait for it while it runs.
 */
function startPrefetch(cache: MetadataCache, limit: number, log: Logger): Promise<string | undefined> {
  if (limit <= 0) return Promise.resolve(undefined);
  const started = performance.now();
  return cache.prefetch(limit).then(
    (outcome) => {
      const ms = Math.round(performance.now() - started);
      if ('overLimit' in outcome) {
        log.info({ limit, entries: outcome.entryCount, ms }, 'tree over the prefetch limit; folders are listed when first used');
        return undefined;
      }
      log.info({ entries: outcome.entryCount, folders: outcome.listings.size, ms }, 'tree prefetched');
      return outcome.cursor;
    },
    (err: unknown) => {
      log.warn({ err: describeError(err) }, 'tree prefetch failed; folders are listed when first used');
      return undefined;
    },
  );
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
