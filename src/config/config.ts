/**
 * The daemon's config file: a JSON object with the app credentials, the refresh token, the folder
 * to mount and, for tests and the emulator, the base URLs of Dropbox's three hosts. Validation
 * rejects the first bad field with a message that names it and says how to fix it.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { Secret } from '../log/secret.js';

export interface Config {
  appKey: string;
  /** Absent for apps that authorised with PKCE and have no secret on this machine. */
  appSecret?: Secret;
  refreshToken: Secret;
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

/**
 * Reads and validates a config file.
 * @throws UsageError naming the file, the field and the fix.
 */
export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT'
        ? 'create it (see README, "Using a real Dropbox account") or pass --config FILE'
        : 'check its permissions';
    throw new UsageError(`config file ${file} cannot be read (${code}): ${hint}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, file);
}

/**
 * Validates a parsed config object.
 * @throws UsageError naming the field and the fix.
 */
export function parseConfig(raw: unknown, file: string): Config {
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
  const refreshToken = requireString(
    fields,
    'refreshToken',
    file,
    'an offline refresh token (see the README section "Using a real Dropbox account")',
  );
  const appSecret = optionalString(fields, 'appSecret', file);
  return {
    appKey,
    appSecret: appSecret === undefined ? undefined : new Secret(appSecret),
    refreshToken: new Secret(refreshToken),
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
