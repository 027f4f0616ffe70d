/**
 * `dropbox-mount MOUNTPOINT`: mounts in the foreground until SIGINT or SIGTERM.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { defaultConfigPath, loadConfig, normalizeRoot } from '../config/config.js';
import { UsageError } from '../errors.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import { startDaemon, type Daemon } from '../daemon.js';
import { describeError } from '../fs/errno.js';

interface MountArgs {
  mountpoint: string;
  config?: string;
  root?: string;
  requestTimeout: number;
  opTimeout: number;
  dirCacheTime: number;
  attrTimeout: number;
  cacheEntries: number;
  fileMode: string;
  dirMode: string;
  logLevel: LogLevel;
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
    .option('file-mode', { type: 'string', default: '0444', describe: 'Permission bits of files (octal)' })
    .option('dir-mode', { type: 'string', default: '0555', describe: 'Permission bits of folders (octal)' })
    .option('log-level', {
      choices: LOG_LEVELS,
      default: 'info' as LogLevel,
      describe: 'Log level; debug logs one line per operation and per HTTP request',
    });
}

async function runMount(args: ArgumentsCamelCase<MountArgs>): Promise<void> {
  const log = createLogger(args.logLevel);
  const mountpoint = resolve(args.mountpoint);
  await checkMountpoint(mountpoint);
  const configFile = args.config ?? defaultConfigPath();
  const config = await loadConfig(configFile);
  if (args.root !== undefined) config.root = normalizeRoot(args.root, 'option --root');
  const daemon = await startDaemon({
    config,
    mountpoint,
    log,
    requestTimeoutMs: positiveSeconds(args.requestTimeout, 'request-timeout') * 1000,
    opDeadlineMs: positiveSeconds(args.opTimeout, 'op-timeout') * 1000,
    dirCacheTtlMs: positiveSeconds(args.dirCacheTime, 'dir-cache-time') * 1000,
    attrTimeoutSeconds: Math.max(1, Math.round(positiveSeconds(args.attrTimeout, 'attr-timeout'))),
    maxCacheEntries: Math.max(1000, Math.floor(args.cacheEntries)),
    fileMode: parseMode(args.fileMode, 'file-mode'),
    dirMode: parseMode(args.dirMode, 'dir-mode'),
  });
  log.info({ mountpoint, config: configFile, root: config.root }, 'mounted');
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

function positiveSeconds(value: number, option: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`option --${option} value "${value}" must be a positive number of seconds`);
  }
  return value;
}

function parseMode(value: string, option: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) {
    throw new UsageError(`option --${option} value "${value}" must be octal permission bits such as 0444`);
  }
  return parseInt(value, 8);
}
