/**
 * Dropbox path arguments. The root is "", every other path starts with "/", and `id:<id>`
 * (optionally followed by "/relative/path") addresses an entry by id. `ns:<n>[/path]`
 * addresses a namespace; only the account's root namespace exists here.
 *
 * Keys: `path_lower` is the lowercased, NFC-normalized path. A requested path matches an entry
 * when its lowercased form equals the entry's lowercased name, either as stored or NFC-normalized.
 * The Maestral client observed that Dropbox fails a lookup in a normalization other than
 * the stored one. Accepting the stored form and NFC is the closest rule that still finds
 * every entry by both its `path_lower` and its `path_display`.
 */

import { badInput, pathLookupError, type HttpError } from './errors.js';

export type PathRef =
  | { kind: 'path'; components: string[] }
  | { kind: 'id'; id: string; components: string[] }
  | { kind: 'rev'; rev: string };

/** Stone patterns as the 400 text quotes them. */
export const PATH_PATTERNS = {
  pathROrId: '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)',
  readPath: '(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)',
  writePath: '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)',
  writePathOrId: '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)',
} as const;

export type PathPattern = keyof typeof PATH_PATTERNS;

// Routes that list the root want "" for it; the others do not accept the root at all.
const ROOT_SLASH_MESSAGES: Record<PathPattern, string> = {
  pathROrId: 'Specify the root folder as an empty string rather than as "/".',
  readPath: 'The root folder is unsupported.',
  writePath: 'The root folder is unsupported.',
  writePathOrId: 'The root folder is unsupported.',
};

export interface ParsePathOptions {
  route: string;
  pattern: PathPattern;
  /** Numeric id of the account's root namespace, which `ns:` paths may name. */
  rootNamespaceId: string;
  /**
   * Where the value came from, as the 400 text names it: the argument source and the field,
   * e.g. `HTTP header "Dropbox-API-Arg": path`. Default `request body: path`.
   */
  argument?: string;
  /** Builds the route's error for a malformed path; default 409 `path/malformed_path`. */
  malformed?: () => HttpError;
}

/**
 * Parses a path argument. Rejects with 400 when it is "/" or does not match the route's
 * pattern. Rejects with 409 `path/malformed_path` for empty, "." or ".." components, a
 * trailing "/" or a trailing space. An unknown namespace is 409 `path/not_found`.
 */
export function parsePath(value: string, options: ParsePathOptions): PathRef {
  const rev = /^rev:([0-9a-f]{9,})$/.exec(value);
  if (rev && options.pattern === 'readPath') {
    return { kind: 'rev', rev: rev[1] as string };
  }
  const malformed = options.malformed ?? (() => pathLookupError('malformed_path'));
  if (value.startsWith('id:') && options.pattern !== 'writePath') {
    const slash = value.indexOf('/');
    const id = slash === -1 ? value : value.slice(0, slash);
    const rest = slash === -1 ? '' : value.slice(slash);
    return { kind: 'id', id, components: splitPath(rest, malformed) };
  }
  const ns = /^ns:([0-9]+)(\/.*)?$/s.exec(value);
  if (ns) {
    if (ns[1] !== options.rootNamespaceId) {
      throw pathLookupError('not_found');
    }
    return { kind: 'path', components: splitPath(ns[2] ?? '', malformed) };
  }
  const argument = options.argument ?? 'request body: path';
  if (value === '/') {
    throw badInput(options.route, `${argument}: ${ROOT_SLASH_MESSAGES[options.pattern]}`);
  }
  const rootAllowed = options.pattern === 'pathROrId';
  if (!value.startsWith('/') && !(rootAllowed && value === '')) {
    throw badInput(
      options.route,
      `${argument}: '${value}' did not match pattern '${PATH_PATTERNS[options.pattern]}'`,
    );
  }
  return { kind: 'path', components: splitPath(value, malformed) };
}

/** Splits "/a/b" into ["a", "b"]; "" is the root and gives []. */
function splitPath(path: string, malformed: () => HttpError): string[] {
  if (path === '') {
    return [];
  }
  const components = path.slice(1).split('/');
  for (const component of components) {
    if (!isWellFormedComponent(component)) {
      throw malformed();
    }
  }
  return components;
}

function isWellFormedComponent(component: string): boolean {
  if (component === '' || component === '.' || component === '..') {
    return false;
  }
  if (component.includes('\0')) {
    return false;
  }
  return !/\s$/.test(component);
}

/** Returns the `path_lower` form of one name: lowercased, then NFC-normalized. */
export function lowerName(name: string): string {
  return name.toLowerCase().normalize('NFC');
}

/** True when the requested component addresses the entry named `name`. */
export function componentMatches(requested: string, name: string): boolean {
  const key = requested.toLowerCase();
  return key === name.toLowerCase() || key === lowerName(name);
}

/**
 * True for names that a Dropbox entry can carry. Names with a backslash, or bytes that are
 * not UTF-8 (decoded by Node as U+FFFD), cannot be stored in Dropbox, so listings skip them.
 */
export function isRepresentableName(name: string): boolean {
  return !name.includes('\\') && !name.includes('\uFFFD') && !IGNORED_NAMES.has(name.toLowerCase());
}

/**
 * Names Dropbox does not store (rclone's `ignoredFiles`, which follows Dropbox's help
 * centre), plus `.dropbox.cache`, the desktop client's cache folder, which the emulator uses
 * for temporary files when its state folder is on another filesystem.
 */
const IGNORED_NAMES = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr', '.dropbox.cache']);

// rclone enforces this per-component limit, citing Dropbox's help centre.
const MAX_NAME_CHARACTERS = 255;

/**
 * Returns the WriteError tag for a path a write would create, or null when Dropbox accepts
 * it: `disallowed_name` for the ignored names above, `malformed_path` for a backslash, a
 * DEL or other control character, a trailing space or more than 255 characters in a name.
 * NOTE: the choice of `malformed_path` for the character rules is an emulator choice; the
 * reference only records that such names fail.
 */
export function writeNameProblem(components: readonly string[]): 'malformed_path' | 'disallowed_name' | null {
  for (const name of components) {
    if (IGNORED_NAMES.has(name.toLowerCase())) {
      return 'disallowed_name';
    }
    // eslint-disable-next-line no-control-regex
    if (/[\\\u0000-\u001f\u007f]/.test(name) || name.endsWith(' ') || [...name].length > MAX_NAME_CHARACTERS) {
      return 'malformed_path';
    }
  }
  return null;
}
