/**
 * `dropbox-mount emulator --data DIR`: serves DIR as a Dropbox account on a local HTTP port
 * until SIGINT or SIGTERM. Stdout gets exactly one line, `emulator listening on URL`, which
 * test harnesses parse; logs go to stderr. The app secret and refresh token are never
 * printed: pass them in, or read them from the file that --write-config writes.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { startEmulator, writeDaemonConfig, type EmulatorOptions } from '../emulator/index.js';
import { FAULT_RULE_SYNTAX, parseFaultRule, type FaultRule } from '../emulator/faults.js';
import { checkLatencyMs, parseBandwidth } from '../emulator/shaping.js';
import { UsageError } from '../errors.js';
import { shownValue } from './option-text.js';
import { createLogger, type Logger } from '../log/logger.js';

export interface EmulatorArgs {
  data: string;
  host: string;
  port: number;
  appKey?: string;
  appSecret?: string;
  refreshToken?: string;
  tokenTtl?: number;
  writeConfig?: string;
  root: string;
  fault?: string[];
  state?: string;
  quota?: number;
  scanIntervalMs?: number;
  linkTtl?: number;
  latencyMs?: number;
  bandwidth?: string;
}

export const emulatorCommand: CommandModule<object, EmulatorArgs> = {
  command: 'emulator',
  describe: 'Serve a local folder as a Dropbox API v2 account over HTTP, for tests and demos',
  builder: (yargs) => withEmulatorOptions(yargs as Argv<object>) as unknown as Argv<EmulatorArgs>,
  handler: async (args) => {
    const log = createLogger('info');
    const stdout = (text: string) => process.stdout.write(text);
    await runEmulatorCommand(args, { log, stdout, stop: waitForSignal(log) });
  },
};

function withEmulatorOptions(yargs: Argv<object>) {
  return yargs
    .option('data', {
      type: 'string',
      demandOption: true,
      describe: 'Existing folder whose contents the emulator serves as the Dropbox account',
    })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
    .option('port', { type: 'number', default: 0, describe: 'TCP port to listen on; 0 picks a free port' })
    .option('app-key', {
      type: 'string',
      describe: 'App key (OAuth client_id) [default: emulator-app-key]',
    })
    .option('app-secret', {
      type: 'string',
      describe: 'App secret (OAuth client_secret) [default: random per start]',
    })
    .option('refresh-token', {
      type: 'string',
      describe: 'Refresh token to accept [default: random per start]',
    })
    .option('token-ttl', {
      type: 'number',
      describe: 'Lifetime of issued access tokens, in seconds [default: 14400]',
    })
    .option('write-config', {
      type: 'string',
      describe: 'Write the daemon config JSON (credentials and URLs, mode 0600) to this file',
    })
    .option('root', {
      type: 'string',
      default: '',
      describe: 'Dropbox folder the written config mounts: "" for the whole account, or /Path',
    })
    .option('state', {
      type: 'string',
      describe:
        'Folder for the catalog of ids and revs, earlier revisions and temporary files ' +
        '[default: a folder per data folder under $XDG_STATE_HOME or the OS temp folder]',
    })
    .option('quota', {
      type: 'number',
      describe: 'Account space in bytes, reported by users/get_space_usage and enforced on writes [default: 2 TiB]',
    })
    .option('scan-interval-ms', {
      type: 'number',
      describe: 'Milliseconds between full scans of the data folder for outside changes; 0 for none [default: 2000]',
    })
    .option('link-ttl', {
      type: 'number',
      describe: 'Lifetime of files/get_temporary_link links, in seconds [default: 14400]',
    })
    .option('fault', {
      type: 'string',
      array: true,
      describe:
        `Fault rule in force from the start; repeat for more. Form: ${FAULT_RULE_SYNTAX}. ` +
        'Without times=N a rule applies until cleared through DELETE /_emulator/faults. ' +
        "Example: --fault 'files/download:cut-after=1048576,times=1'",
    })
    .option('latency-ms', {
      type: 'number',
      describe: 'Added round-trip time per request, in milliseconds, before the response headers [default: 0]',
    })
    .option('bandwidth', {
      type: 'string',
      describe:
        'Cap on all request and response body bytes together, in bytes per second, with an ' +
        'optional 1024-based K, M or G suffix, e.g. 4M; 0 for no limit [default: 0]',
    });
}

/** Output and lifetime of one emulator run; tests pass their own. */
export interface EmulatorRunIo {
  log: Logger;
  stdout: (text: string) => void;
  /** Settles when the emulator should stop. */
  stop: Promise<unknown>;
}

/**
 * Starts the emulator, prints its URL, writes the config when asked and waits for `io.stop`.
 * Throws UsageError (exit status 2) for a bad option value or a data folder that is missing
 * or not a folder.
 */
export async function runEmulatorCommand(
  args: ArgumentsCamelCase<EmulatorArgs> | EmulatorArgs,
  io: EmulatorRunIo,
): Promise<void> {
  const options = await emulatorOptionsFrom(args);
  const emulator = await startEmulator(options);
  try {
    if (args.writeConfig !== undefined) {
      await writeDaemonConfig(emulator, resolve(args.writeConfig), args.root);
    }
    io.log.info({ url: emulator.url, data: options.dataDir, config: args.writeConfig }, 'emulator started');
    io.stdout(`emulator listening on ${emulator.url}\n`);
    await io.stop;
  } finally {
    await emulator.close();
    io.log.info('emulator stopped');
  }
}

async function emulatorOptionsFrom(args: EmulatorArgs): Promise<EmulatorOptions> {
  const dataDir = resolve(args.data);
  await checkDataFolder(args.data, dataDir);
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    throw new UsageError(`option --port value "${shownValue('port', args.port)}" must be an integer from 0 to 65535`);
  }
  const ttl = args.tokenTtl;
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0)) {
    throw new UsageError(`option --token-ttl value "${shownValue('token-ttl', ttl)}" must be a positive whole number of seconds`);
  }
  return {
    dataDir,
    host: args.host,
    port: args.port,
    ...shapingOptionsFrom(args),
    ...(args.fault === undefined ? {} : { faults: args.fault.map(faultRuleFrom) }),
    ...stateOptionsFrom(args),
    ...(args.appKey === undefined ? {} : { appKey: args.appKey }),
    ...(args.appSecret === undefined ? {} : { appSecret: args.appSecret }),
    ...(args.refreshToken === undefined ? {} : { refreshToken: args.refreshToken }),
    ...(ttl === undefined ? {} : { accessTokenTtlSeconds: ttl }),
  };
}

function stateOptionsFrom(args: EmulatorArgs): Partial<EmulatorOptions> {
  const whole = (value: number | undefined, option: string, min: number): number | undefined => {
    if (value !== undefined && (!Number.isInteger(value) || value < min)) {
      throw new UsageError(`option --${option} value "${shownValue(option, value)}" must be a whole number of at least ${min}`);
    }
    return value;
  };
  const quota = whole(args.quota, 'quota', 0);
  const scanIntervalMs = whole(args.scanIntervalMs, 'scan-interval-ms', 0);
  const linkTtl = whole(args.linkTtl, 'link-ttl', 1);
  return {
    ...(args.state === undefined ? {} : { stateDir: resolve(args.state) }),
    ...(quota === undefined ? {} : { quotaBytes: quota }),
    ...(scanIntervalMs === undefined ? {} : { scanIntervalMs }),
    ...(linkTtl === undefined ? {} : { temporaryLinkTtlSeconds: linkTtl }),
  };
}

function shapingOptionsFrom(args: EmulatorArgs): Pick<EmulatorOptions, 'latencyMs' | 'bandwidthBytesPerSecond'> {
  const options: Pick<EmulatorOptions, 'latencyMs' | 'bandwidthBytesPerSecond'> = {};
  try {
    if (args.latencyMs !== undefined) {
      options.latencyMs = checkLatencyMs(args.latencyMs, 'option --latency-ms');
    }
    if (args.bandwidth !== undefined) {
      options.bandwidthBytesPerSecond = parseBandwidth(args.bandwidth);
    }
  } catch (error) {
    const message = (error as Error).message;
    // parseBandwidth does not know the option's name, so it is added here.
    throw new UsageError(message.startsWith('option') ? message : `option --bandwidth ${message}`, { cause: error });
  }
  return options;
}

function faultRuleFrom(text: string): FaultRule {
  try {
    return parseFaultRule(text);
  } catch (error) {
    throw new UsageError(`option --fault value "${text}" is invalid: ${(error as Error).message}`, { cause: error });
  }
}

async function checkDataFolder(optionValue: string, dataDir: string): Promise<void> {
  let isFolder: boolean;
  try {
    isFolder = (await stat(dataDir)).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UsageError(`option --data value "${optionValue}" does not exist; create it with: mkdir -p ${dataDir}`);
    }
    throw new UsageError(`option --data value "${optionValue}" cannot be read (${code ?? String(error)})`);
  }
  if (!isFolder) {
    throw new UsageError(`option --data value "${optionValue}" is not a folder; pass the folder to serve`);
  }
}

function waitForSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolvePromise) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      log.info({ signal }, 'stopping emulator');
      resolvePromise(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
