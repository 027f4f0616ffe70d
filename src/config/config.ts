/**
 * The daemon's config file: a JSON object with the app credentials, the refresh token, the folder
 * to mount and, for tests and the emulator, the base URLs of Dropbox's three hosts. Validation
 * rejects the first bad field with a message that names it and gives the fix.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { Secret } from '../log/secret.js';

export interface Config {
  appKey: string;
  /** Absent for apps that authorised with PKCE and have no secret on this machine. */
  appSecret?: Secret;
  refreshToken: Secret;
  /** The origin of the refresh token, for messages: `field "refreshToken"`, a file or a variable. */
  refreshTokenSource: string;
  /** `""` for the whole account, a path such as `/Photos`, or `id:...`. */
  root: string;
  apiUrl: string;
  contentUrl: string;
  notifyUrl: string;
  /** The file the config was read from, for messages. */
  file: string;
}

export const DEFAULT_URLS = {
  apiUrl: 'https://api.dropboxapi.com',
  contentUrl: 'https://content.dropboxapi.com',
  notifyUrl: 'https://notify.dropboxapi.com',
} as const;

const KNOWN_FIELDS = [
  'appKey',
  'appSecret',
  'refreshToken',
  'refreshTokenFile',
  'refreshTokenEnv',
  'root',
  'apiUrl',
  'contentUrl',
  'notifyUrl',
] as const;

/** Returns `$XDG_CONFIG_HOME/dropbox-mount/config.json`, falling back to `~/.config`. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'dropbox-mount', 'config.json');
}

/** The command that writes a config file with a new refresh token. */
export const LOGIN_COMMAND = 'dropbox-mount login --app-key APP_KEY';

/**
 * Reads and validates a config file. The file must not be readable or writable by group or
 * others, because it may contain the refresh token and it sets the URLs the token is sent to.
 * @throws UsageError naming the file, the field and the fix.
 */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT'
        ? `create it with ${LOGIN_COMMAND} --config ${shellQuote(file)}, or pass --config FILE`
        : 'check its permissions';
    throw new UsageError(`config file ${file} cannot be read (${code}): ${hint}`, { cause: err });
  }
  checkPrivateMode(file, (await stat(file)).mode, 'config file');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, file, env);
}

/**
 * Validates a parsed config object and reads the refresh token from the field, the file or the
 * environment variable that the config names. `refreshTokenFile` is read synchronously, once.
 * @throws UsageError naming the field and the fix.
 */
export function parseConfig(raw: unknown, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UsageError(`config file ${file} must contain a JSON object`);
  }
  const fields = raw as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(KNOWN_FIELDS as readonly string[]).includes(key)) {
      const expected = KNOWN_FIELDS.join(', ');
      throw new UsageError(`config ${file}: unknown field "${key}"; expected one of ${expected}`);
    }
  }
  const appKey = requireString(fields, 'appKey', file, 'the app key from the Dropbox App Console');
  const refreshToken = readRefreshToken(fields, file, env);
  const appSecret = optionalString(fields, 'appSecret', file);
  return {
    appKey,
    appSecret: appSecret === undefined ? undefined : new Secret(appSecret),
    refreshToken: new Secret(refreshToken.value),
    refreshTokenSource: refreshToken.source,
    root: normalizeRoot(fields.root ?? '', `config ${file}: field "root"`),
    apiUrl: parseBaseUrl(fields, 'apiUrl', file),
    contentUrl: parseBaseUrl(fields, 'contentUrl', file),
    notifyUrl: parseBaseUrl(fields, 'notifyUrl', file),
    file,
  };
}

/**
 * Checks a mount root and returns it in the form the Dropbox API takes: `""` for the whole
 * account (also accepted as `/`), `/Some/Path` without a trailing slash, or `id:...`.
 * @throws UsageError that starts with `where`.
 */
export function normalizeRoot(value: unknown, where: string): string {
  if (typeof value !== 'string') {
    throw new UsageError(`${where} must be a string: "" for the whole account, /Path or id:...`);
  }
  if (value.startsWith('id:')) {
    if (value.length > 3 && !value.includes('/')) return value;
    throw new UsageError(`${where} "${value}" is not a valid id; copy the id: value as Dropbox shows it`);
  }
  if (value === '' || value === '/') return '';
  if (!value.startsWith('/')) {
    throw new UsageError(
      `${where} "${value}" must start with "/" (for example "/${value}"), be "" or start with id:`,
    );
  }
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..')) {
    throw new UsageError(`${where} "${value}" contains an empty, "." or ".." component`);
  }
  return trimmed;
}

/**
 * Rejects a file that group or others may read or write, with the chmod command that fixes it.
 * @throws UsageError naming the file, its mode and the fix.
 */
export function checkPrivateMode(file: string, mode: number, what: string): void {
  if (process.platform === 'win32' || (mode & 0o077) === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  throw new UsageError(
    `${what} ${file} has mode ${octal}, so group or others can read or write it; it may contain ` +
      `a refresh token, so make it private: chmod 600 ${shellQuote(file)}`,
  );
}

/** Quotes `text` for a POSIX shell when it contains characters the shell would interpret. */
export function shellQuote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

const TOKEN_FIELDS = ['refreshToken', 'refreshTokenFile', 'refreshTokenEnv'] as const;

/**
 * Returns the refresh token from exactly one of the fields `refreshToken` (the token itself),
 * `refreshTokenFile` (a file that contains it, such as a systemd credential) or
 * `refreshTokenEnv` (the name of an environment variable that contains it).
 */
function readRefreshToken(
  fields: Record<string, unknown>,
  file: string,
  env: NodeJS.ProcessEnv,
): { value: string; source: string } {
  const present = TOKEN_FIELDS.filter((key) => fields[key] !== undefined);
  if (present.length === 0) {
    throw new UsageError(
      `config ${file}: missing field "refreshToken"; write the config with ${LOGIN_COMMAND}, ` +
        'or set "refreshTokenFile" to a file or "refreshTokenEnv" to an environment variable that contains the token',
    );
  }
  if (present.length > 1) {
    throw new UsageError(`config ${file}: fields ${present.map((key) => `"${key}"`).join(' and ')} ` +
      'both set the refresh token; keep only one');
  }
  if (present[0] === 'refreshToken') {
    const value = requireString(fields, 'refreshToken', file, `an offline refresh token from ${LOGIN_COMMAND}`);
    return { value: value.trim(), source: 'field "refreshToken"' };
  }
  if (present[0] === 'refreshTokenEnv') {
    const name = requireString(fields, 'refreshTokenEnv', file, 'the name of an environment variable');
    const value = env[name]?.trim();
    if (!value) {
      throw new UsageError(
        `config ${file}: field "refreshTokenEnv" names the environment variable ${name}, which is ` +
          'not set or empty; set it to the refresh token',
      );
    }
    return { value, source: `environment variable ${name}` };
  }
  const tokenFile = tokenFilePath(fields, file, env);
  return { value: readTokenFile(tokenFile, file), source: `file ${tokenFile}` };
}

/**
 * Returns the path in `refreshTokenFile` with `${NAME}` replaced by environment variables,
 * so that `${CREDENTIALS_DIRECTORY}/refresh-token` finds a systemd credential. A relative path
 * is taken from the config file's folder.
 */
function tokenFilePath(fields: Record<string, unknown>, file: string, env: NodeJS.ProcessEnv): string {
  const template = requireString(fields, 'refreshTokenFile', file, 'the path of a file that contains the refresh token');
  const expanded = template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const value = env[name];
    if (!value) {
      throw new UsageError(
        `config ${file}: field "refreshTokenFile" value "${template}" uses \${${name}}, which is not set; ` +
          (name === 'CREDENTIALS_DIRECTORY'
            ? 'systemd sets it only for a unit with LoadCredential=, so run it from such a unit or give a plain path'
            : `set ${name} or give a plain path`),
      );
    }
    return value;
  });
  return isAbsolute(expanded) ? expanded : resolve(dirname(file), expanded);
}

function readTokenFile(tokenFile: string, file: string): string {
  let text: string;
  try {
    checkPrivateMode(tokenFile, statSync(tokenFile).mode, 'refresh token file');
    text = readFileSync(tokenFile, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UsageError(
      `config ${file}: refresh token file ${tokenFile} cannot be read (${code}); check "refreshTokenFile" and the file's permissions`,
      { cause: err },
    );
  }
  const value = text.trim();
  if (value === '') {
    throw new UsageError(`config ${file}: refresh token file ${tokenFile} is empty; write the refresh token into it`);
  }
  return value;
}

function requireString(
  fields: Record<string, unknown>,
  key: string,
  file: string,
  what: string,
): string {
  const value = fields[key];
  if (value === undefined) {
    throw new UsageError(`config ${file}: missing field "${key}"; set it to ${what}`);
  }
  if (typeof value !== 'string' || value.trim() === '') {
    throw new UsageError(`config ${file}: field "${key}" must be a non-empty string (${what})`);
  }
  return value;
}

function optionalString(fields: Record<string, unknown>, key: string, file: string) {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(`config ${file}: field "${key}" must be a non-empty string or left out`);
  }
  return value;
}

function parseBaseUrl(
  fields: Record<string, unknown>,
  key: 'apiUrl' | 'contentUrl' | 'notifyUrl',
  file: string,
): string {
  const value = fields[key];
  if (value === undefined) return DEFAULT_URLS[key];
  const fix = `set it to a URL such as ${DEFAULT_URLS[key]} or leave it out`;
  if (typeof value !== 'string') {
    throw new UsageError(`config ${file}: field "${key}" must be a string; ${fix}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`config ${file}: field "${key}" value "${value}" is not a URL; ${fix}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`config ${file}: field "${key}" value "${value}" must be http or https`);
  }
  return value.replace(/\/+$/, '');
}
