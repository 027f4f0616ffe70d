/**
 * `dropbox-mount check`: runs every step of a mount that talks to Dropbox (config, token
 * refresh, account, root folder, first page of its listing) and prints what would be mounted.
 * Exit status 0 when all steps pass, 2 for a config or root problem, 1 for auth and network
 * errors. Neither the refresh token nor the app secret is printed.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { describeAccount, type AccountSummary } from '../auth/account.js';
import { defaultConfigPath, loadConfig, normalizeRoot, type Config } from '../config/config.js';
import { DropboxClient } from '../dropbox/client.js';
import { ApiError } from '../dropbox/errors.js';
import type { ListFolderResult, Metadata } from '../dropbox/types.js';
import { UsageError } from '../errors.js';
import { shownValue } from './option-text.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../log/logger.js';

interface CheckArgs {
  config?: string;
  root?: string;
  requestTimeout: number;
  logLevel: LogLevel;
}

export const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check',
  describe: 'Check the config, the token and the root folder, and print what would be mounted',
  builder: (yargs) => withCheckOptions(yargs as Argv<object>) as unknown as Argv<CheckArgs>,
  handler: async (args) => {
    await runCheck(args);
  },
};

function withCheckOptions(yargs: Argv<object>) {
  return yargs
    .option('config', {
      type: 'string',
      describe: `Config file (JSON) [default: ${defaultConfigPath()}]`,
    })
    .option('root', {
      type: 'string',
      describe: 'Dropbox folder to check: "" for the whole account, /Path or id:... (overrides the config)',
    })
    .option('request-timeout', {
      type: 'number',
      default: 30,
      describe: 'Seconds to wait for a connection, for response headers or between body bytes',
    })
    .option('log-level', {
      choices: LOG_LEVELS,
      default: 'warn' as LogLevel,
      describe: 'Level of the JSON log lines on stderr, such as retries',
    });
}

async function runCheck(args: ArgumentsCamelCase<CheckArgs>): Promise<void> {
  const configFile = args.config ?? defaultConfigPath();
  const config = await loadConfig(configFile);
  if (args.root !== undefined) config.root = normalizeRoot(args.root, 'option --root');
  if (!Number.isFinite(args.requestTimeout) || args.requestTimeout <= 0) {
    const typed = shownValue('request-timeout', args.requestTimeout);
    throw new UsageError(`option --request-timeout value "${typed}" must be a positive number of seconds`);
  }
  const print = (label: string, value: string) => process.stdout.write(`${`${label}:`.padEnd(10)}${value}\n`);
  print('config', `${configFile} (refresh token from ${config.refreshTokenSource})`);
  print('api', config.apiUrl);

  const log = createLogger(args.logLevel);
  const client = new DropboxClient({ config, timeoutMs: Math.ceil(args.requestTimeout * 1000), log });
  try {
    await client.tokens.accessToken();
    print('token', 'refreshed');
    const account = await client.rpc<AccountSummary>('users/get_current_account');
    print('account', `${describeAccount(account)} (${account.account_id})`);
    const rootPath = await checkRoot(client, config);
    const listing = await client.rpc<ListFolderResult>('files/list_folder', { path: rootPath });
    const more = listing.has_more ? ', more pages follow' : '';
    print('root', config.root === '' ? '/ (the whole account)' : `${rootPath} (from ${config.root})`);
    print('entries', `${listing.entries.length} in the first page of the listing${more}`);
  } finally {
    await client.close();
  }
  process.stdout.write('ok: dropbox-mount can mount this folder\n');
}

/**
 * Returns the Dropbox path to list: `""` for the whole account, otherwise the current path of
 * the root folder from files/get_metadata.
 * @throws UsageError when the root does not exist or is not a folder.
 */
async function checkRoot(client: DropboxClient, config: Config): Promise<string> {
  if (config.root === '') return '';
  let metadata: Metadata;
  try {
    metadata = await client.rpc<Metadata>('files/get_metadata', { path: config.root });
  } catch (err) {
    if (err instanceof ApiError && err.has('not_found')) {
      throw new UsageError(`root folder ${config.root} was not found in Dropbox; check "root" in ${config.file} or --root`);
    }
    throw err;
  }
  if (metadata['.tag'] !== 'folder') {
    throw new UsageError(`root ${config.root} is a ${metadata['.tag']}, not a folder; mount its parent folder instead`);
  }
  return metadata.path_display ?? metadata.path_lower ?? config.root;
}
