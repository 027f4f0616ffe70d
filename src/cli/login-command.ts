/**
 * `dropbox-mount login`: gets an offline refresh token with the OAuth code flow and PKCE, and
 * writes the config file (mode 0600) that `dropbox-mount` and `dropbox-mount check` read.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { request } from 'undici';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { describeAccount, type AccountSummary } from '../auth/account.js';
import { existingConfigError, writeConfigFile, type ConfigFileFields } from '../auth/config-file.js';
import {
  buildAuthorizeUrl,
  createPkceSession,
  DEFAULT_AUTHORIZE_URL,
  exchangeCode,
  readPastedCode,
  startCallbackServer,
  type CallbackServer,
} from '../auth/login.js';
import { DEFAULT_URLS, defaultConfigPath, normalizeRoot, shellQuote } from '../config/config.js';
import { DropboxMountError, UsageError } from '../errors.js';
import { shownValue } from './option-text.js';

interface LoginArgs {
  appKey: string;
  appSecret?: string;
  config?: string;
  force: boolean;
  port: number;
  browserCallback: boolean;
  root: string;
  apiUrl?: string;
  authUrl?: string;
  timeout: number;
}

export const loginCommand: CommandModule<object, LoginArgs> = {
  command: 'login',
  describe: 'Authorize dropbox-mount in a browser and write the config file with a refresh token',
  builder: (yargs) => withLoginOptions(yargs as Argv<object>) as unknown as Argv<LoginArgs>,
  handler: async (args) => {
    await runLogin(args);
  },
};

function withLoginOptions(yargs: Argv<object>) {
  return yargs
    .option('app-key', {
      type: 'string',
      demandOption: true,
      describe: 'App key from the Dropbox App Console (OAuth client_id)',
    })
    .option('app-secret', {
      type: 'string',
      describe: 'App secret; leave it out to rely on PKCE alone, so no secret is stored',
    })
    .option('config', {
      type: 'string',
      describe: `Config file to write [default: ${defaultConfigPath()}]`,
    })
    .option('force', { type: 'boolean', default: false, describe: 'Replace an existing config file' })
    .option('port', {
      type: 'number',
      default: 0,
      describe:
        'TCP port on 127.0.0.1 for the redirect; 0 picks a free port. Dropbox accepts only redirect ' +
        'URIs registered in the App Console, so register http://127.0.0.1:PORT/callback and pass that port',
    })
    .option('browser-callback', {
      type: 'boolean',
      default: true,
      describe: 'Receive the code on a redirect to 127.0.0.1; --no-browser-callback asks to paste it instead',
    })
    .option('root', {
      type: 'string',
      default: '',
      describe: 'Dropbox folder to mount, written to the config: "" for the whole account, /Path or id:...',
    })
    .option('api-url', {
      type: 'string',
      describe: `Base URL of the API, content and notify hosts, written to the config (for the emulator) [default: ${DEFAULT_URLS.apiUrl}]`,
    })
    .option('auth-url', {
      type: 'string',
      describe: `URL of the authorize page [default: API-URL/oauth2/authorize with --api-url, else ${DEFAULT_AUTHORIZE_URL}]`,
    })
    .option('timeout', {
      type: 'number',
      default: 600,
      describe: 'Seconds to wait for the authorization code',
    });
}

const REQUEST_TIMEOUT_MS = 30_000;

async function runLogin(args: ArgumentsCamelCase<LoginArgs>): Promise<void> {
  const configFile = resolve(args.config ?? defaultConfigPath());
  if (!args.force && (await exists(configFile))) throw existingConfigError(configFile);
  const root = normalizeRoot(args.root, 'option --root');
  const apiUrl = args.apiUrl === undefined ? undefined : parseUrlOption(args.apiUrl, 'api-url');
  const authorizeUrl =
    args.authUrl !== undefined
      ? parseUrlOption(args.authUrl, 'auth-url')
      : apiUrl !== undefined
        ? `${apiUrl}/oauth2/authorize`
        : DEFAULT_AUTHORIZE_URL;
  if (args.appKey.trim() === '') {
    throw new UsageError('option --app-key is empty; pass the app key from the Dropbox App Console');
  }
  checkPort(args.port);
  if (!Number.isFinite(args.timeout) || args.timeout <= 0) {
    throw new UsageError(`option --timeout value "${shownValue('timeout', args.timeout)}" must be a positive number of seconds`);
  }

  const session = createPkceSession();
  const warn = (reason: string) => process.stderr.write(`dropbox-mount: ${reason}\n`);
  const server = args.browserCallback ? await startServer(args.port, session.state, warn) : undefined;
  let code: string;
  try {
    const url = buildAuthorizeUrl(authorizeUrl, args.appKey, session, server?.redirectUri);
    printInstructions(url, server);
    code = await waitForCode(server, session.state, args.timeout, warn);
  } finally {
    await server?.close();
  }

  const apiBase = apiUrl ?? DEFAULT_URLS.apiUrl;
  const grant = await exchangeCode({
    tokenUrl: `${apiBase}/oauth2/token`,
    appKey: args.appKey,
    appSecret: args.appSecret,
    code,
    verifier: session.verifier,
    redirectUri: server?.redirectUri,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const account = await fetchAccount(apiBase, grant.accessToken).catch((err: unknown) => {
    warn(`users/get_current_account failed, so the account is not shown: ${(err as Error).message}`);
    return undefined;
  });

  const fields: ConfigFileFields = {
    appKey: args.appKey,
    ...(args.appSecret === undefined ? {} : { appSecret: args.appSecret }),
    refreshToken: grant.refreshToken,
    root,
    ...(apiUrl === undefined ? {} : { apiUrl, contentUrl: apiUrl, notifyUrl: apiUrl }),
  };
  await writeConfigFile(configFile, fields, args.force);
  const accountLabel = account === undefined ? `account ${grant.accountId ?? '(unknown)'}` : describeAccount(account);
  process.stdout.write(
    `Logged in as ${accountLabel}.\nWrote ${configFile} (mode 0600).\n` +
      `Check it with: dropbox-mount check --config ${shellQuote(configFile)}\n`,
  );
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function parseUrlOption(value: string, option: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`option --${option} value "${value}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`option --${option} value "${value}" must be an http or https URL`);
  }
  return value.replace(/\/+$/, '');
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`option --port value "${port}" must be a whole number from 0 to 65535`);
  }
}

async function startServer(port: number, state: string, warn: (reason: string) => void): Promise<CallbackServer> {
  try {
    return await startCallbackServer(port, state, warn);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw new UsageError(`cannot listen on 127.0.0.1:${port} (${code}); pass another --port, or 0 to pick a free one`);
    }
    throw err;
  }
}

function printInstructions(url: string, server: CallbackServer | undefined): void {
  const lines = ['Open this URL in a browser, sign in to Dropbox and allow access:', '', `  ${url}`, ''];
  if (server === undefined) {
    lines.push('Then paste the code Dropbox shows here and press Enter:');
  } else {
    lines.push(
      `Waiting for the browser to be redirected to ${server.redirectUri} ...`,
      'If the browser runs on another machine, paste the URL it was redirected to here and press Enter.',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * Resolves with the first code from the redirect or standard input. The end of standard input
 * is an error only when there is no redirect server to wait for.
 */
async function waitForCode(
  server: CallbackServer | undefined,
  state: string,
  timeoutSeconds: number,
  warn: (reason: string) => void,
): Promise<string> {
  const pasted = readPastedCode(process.stdin, state, warn);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new DropboxMountError('LOGIN_TIMEOUT', `no authorization code arrived within ${timeoutSeconds} s; run login again`));
    }, Math.min(timeoutSeconds * 1000, 2 ** 31 - 1));
  });
  const fromStdin = pasted.code.then((code) => {
    if (code !== undefined) return code;
    if (server !== undefined) return new Promise<string>(() => {});
    throw new DropboxMountError('LOGIN_NO_CODE', 'standard input ended before an authorization code was pasted');
  });
  try {
    return await Promise.race([fromStdin, timeout, ...(server === undefined ? [] : [server.code])]);
  } finally {
    clearTimeout(timer);
    pasted.close();
    process.stdin.pause();
  }
}

async function fetchAccount(apiUrl: string, accessToken: string): Promise<AccountSummary> {
  const response = await request(`${apiUrl}/2/users/get_current_account`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}` },
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as AccountSummary;
}
