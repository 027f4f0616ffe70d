/**
 * `dropbox-mount MOUNTPOINT`: mounts in the foreground until SIGINT or SIGTERM.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { defaultConfigPath, loadConfig, normalizeRoot } from '../config/config.js';
import { defaultCacheFolder, defaultCacheFolderHint } from '../config/cache-folder.js';
import { UsageError } from '../errors.js';
import { shownValue } from './option-text.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import { startDaemon, type Daemon } from '../daemon.js';
import { describeError } from '../fs/errno.js';
import { KNOWN_MOUNT_OPTIONS, parseMountOptions } from '../fuse/mount-options.js';
import { LastErrorRecorder } from '../status/last-error.js';
import { statusSocketPath } from '../status/socket-path.js';
import { notifySystemd } from '../status/systemd-notify.js';

interface MountArgs {
  mountpoint: string;
  config?: string;
  root?: string;
  requestTimeout: number;
  opTimeout: number;
  dirCacheTime: number;
  attrTimeout: number;
  cacheEntries: number;
  memoryLimit: number;
  fileMode?: string;
  dirMode?: string;
  readOnly: boolean;
  cacheDir?: string;
  cacheMaxSize: number;
  commitTimeout: number;
  logLevel: LogLevel;
  poll: boolean;
  prefetch: boolean;
  prefetchLimit: number;
  o?: string | string[];
  hideNonDownloadable: boolean;
  metadataCache?: string;
}

export const mountCommand: CommandModule<object, MountArgs> = {
  command: '$0 <mountpoint>',
  describe: 'Mount Dropbox at MOUNTPOINT, in the foreground, logging to stderr',
  builder: (yargs) => withMountOptions(yargs as Argv<object>) as unknown as Argv<MountArgs>,
  handler: async (args) => {
    await runMount(args);
  },
};

function withMountOptions(yargs: Argv<object>) {
  return yargs
    .positional('mountpoint', { type: 'string', describe: 'Existing empty folder to mount on' })
    .option('config', {
      type: 'string',
      describe: `Config file (JSON) [default: ${defaultConfigPath()}]`,
    })
    .option('root', {
      type: 'string',
      describe: 'Dropbox folder to mount: "" for the whole account, /Path or id:... (overrides the config)',
    })
    .option('request-timeout', {
      type: 'number',
      default: 30,
      describe: 'Seconds to wait for a connection, for response headers or between body bytes',
    })
    .option('op-timeout', {
      type: 'number',
      default: 60,
      describe: 'Seconds a filesystem operation may take before it fails with EIO',
    })
    .option('dir-cache-time', {
      type: 'number',
      default: 60,
      describe: 'Seconds a folder listing or file metadata is reused before Dropbox is asked again',
    })
    .option('attr-timeout', {
      type: 'number',
      default: 1,
      describe: 'Seconds the kernel caches attributes and names (at least 1)',
    })
    .option('cache-entries', {
      type: 'number',
      default: 200_000,
      describe: 'Maximum number of metadata entries kept in memory',
    })
    .option('memory-limit', {
      type: 'number',
      default: 128,
      describe: 'MiB of memory for kept and cached read bytes, shared by all open files',
    })
    .option('file-mode', {
      type: 'string',
      describe: 'Permission bits of files (octal) [default: 0644, or 0444 with --read-only]',
    })
    .option('dir-mode', {
      type: 'string',
      describe: 'Permission bits of folders (octal) [default: 0755, or 0555 with --read-only]',
    })
    .option('read-only', {
      type: 'boolean',
      default: false,
      describe: 'Mount read-only: every change fails with EROFS (also -o ro)',
    })
    .option('cache-dir', {
      type: 'string',
      describe: `Folder for the write spool and saved mtimes [default: ${defaultCacheFolderHint()}]`,
    })
    .option('cache-max-size', {
      type: 'number',
      default: 10_240,
      describe: 'MiB the write spool may hold; a write past it fails with ENOSPC',
    })
    .option('commit-timeout', {
      type: 'number',
      default: 3600,
      describe: 'Seconds a close or fsync may wait for its upload before it fails with EIO (the upload goes on)',
    })
    .option('poll', {
      type: 'boolean',
      default: true,
      describe: 'Watch Dropbox for changes (longpoll) and apply them to cached metadata; --no-poll turns it off',
    })
    .option('prefetch', {
      type: 'boolean',
      default: true,
      describe: 'List the whole tree in one recursive listing at mount; --no-prefetch lists folders when first used',
    })
    .option('prefetch-limit', {
      type: 'number',
      default: 100_000,
      describe: 'Maximum entries the prefetch loads; a larger tree is listed folder by folder instead',
    })
    .option('o', {
      type: 'string',
      describe: `Mount options as a comma-separated list, repeatable: ${KNOWN_MOUNT_OPTIONS.join(', ')}`,
    })
    .option('hide-non-downloadable', {
      type: 'boolean',
      default: false,
      describe: 'Leave out files that cannot be downloaded (Paper docs) instead of listing their exports',
    })
    .option('metadata-cache', {
      type: 'string',
      describe: 'File (or folder) that keeps the metadata cache and change cursor across restarts',
    })
    .option('log-level', {
      choices: LOG_LEVELS,
      default: 'info' as LogLevel,
      describe: 'Log level; debug logs one line per operation and per HTTP request',
    });
}

async function runMount(args: ArgumentsCamelCase<MountArgs>): Promise<void> {
  const lastError = new LastErrorRecorder();
  const log = createLogger(args.logLevel, { onLog: (level, logArgs) => lastError.record(level, logArgs) });
  const mountpoint = resolve(args.mountpoint);
  const mountOptions = parseMountOptions(args.o === undefined ? [] : [args.o].flat());
  await checkMountpoint(mountpoint);
  const configFile = args.config ?? defaultConfigPath();
  const config = await loadConfig(configFile);
  if (args.root !== undefined) config.root = normalizeRoot(args.root, 'option --root');
  const readOnly = args.readOnly || mountOptions.readOnly === true;
  const daemon = await startDaemon({
    config,
    mountpoint,
    log,
    requestTimeoutMs: secondsToMs(args.requestTimeout, 'request-timeout'),
    opDeadlineMs: secondsToMs(args.opTimeout, 'op-timeout'),
    dirCacheTtlMs: secondsToMs(args.dirCacheTime, 'dir-cache-time'),
    attrTimeoutSeconds: Math.max(1, Math.round(secondsToMs(args.attrTimeout, 'attr-timeout') / 1000)),
    maxCacheEntries: wholeNumber(args.cacheEntries, 'cache-entries', 1000, 100_000_000),
    memoryBudgetBytes: wholeNumber(args.memoryLimit, 'memory-limit', 8, 1_048_576) * 1024 * 1024,
    fileMode: parseMode(args.fileMode ?? (readOnly ? '0444' : '0644'), 'file-mode'),
    dirMode: parseMode(args.dirMode ?? (readOnly ? '0555' : '0755'), 'dir-mode'),
    readOnly,
    cacheFolder: args.cacheDir === undefined ? defaultCacheFolder(config) : resolve(args.cacheDir),
    cacheMaxBytes: wholeNumber(args.cacheMaxSize, 'cache-max-size', 1, 1_073_741_824) * 1024 * 1024,
    commitDeadlineMs: secondsToMs(args.commitTimeout, 'commit-timeout'),
    poll: args.poll,
    prefetchLimit: args.prefetch ? wholeNumber(args.prefetchLimit, 'prefetch-limit', 1, 100_000_000) : 0,
    hideNonDownloadable: args.hideNonDownloadable,
    metadataCachePath: args.metadataCache === undefined ? undefined : resolve(args.metadataCache),
    mountOptions,
    statusSocketPath: statusSocketPath(mountpoint),
    lastError,
  });
  log.info({ mountpoint, config: configFile, root: config.root }, 'mounted');
  void notifySystemd('READY=1', log);
  await waitForSignal(daemon, log);
}

async function checkMountpoint(mountpoint: string): Promise<void> {
  try {
    const info = await stat(mountpoint);
    if (!info.isDirectory()) {
      throw new UsageError(`mountpoint ${mountpoint} is not a folder; pass an empty folder`);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A mount left by a killed daemon fails stat with ENOTCONN; the mount step clears it.
    if (code === 'ENOTCONN') return;
    if (code === 'ENOENT') {
      throw new UsageError(`mountpoint ${mountpoint} does not exist; create it with: mkdir -p ${mountpoint}`);
    }
    if (err instanceof UsageError) throw err;
    throw new UsageError(`mountpoint ${mountpoint} cannot be used (${code ?? String(err)})`);
  }
}

function waitForSignal(daemon: Daemon, log: Logger): Promise<void> {
  return new Promise((resolvePromise) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal, exiting without a clean unmount');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'unmounting');
      void notifySystemd('STOPPING=1', log);
      daemon.stop().then(
        () => {
          log.info('unmounted');
          resolvePromise();
        },
        (err: unknown) => {
          log.error({ err: describeError(err) }, 'unmount failed');
          process.exitCode = 1;
          resolvePromise();
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

// Node timers and lru-cache TTLs take whole milliseconds up to 2^31 - 1 (about 24.8 days), and
// a larger timer would fire at once. Larger values are therefore capped, which is what someone
// who writes a huge value means.
const MAX_TIMER_MS = 2 ** 31 - 1;

function secondsToMs(value: number, option: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`option --${option} value "${shownValue(option, value)}" must be a positive number of seconds`);
  }
  return Math.min(MAX_TIMER_MS, Math.ceil(value * 1000));
}

function wholeNumber(value: number, option: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      `option --${option} value "${shownValue(option, value)}" must be a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

function parseMode(value: string, option: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) {
    throw new UsageError(`option --${option} value "${value}" must be octal permission bits such as 0444`);
  }
  return parseInt(value, 8);
}
