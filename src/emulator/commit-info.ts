/**
 * CommitInfo, the write arguments shared by files/upload and upload_session/finish: path,
 * WriteMode, autorename, client_modified, mute, property_groups and strict_conflict.
 */

import type { FieldSpec, StructSpec } from './args.js';
import type { EmulatorContext } from './context.js';
import { badInput, type HttpError } from './errors.js';
import { lookupEntry } from './lookup.js';
import { parsePath } from './paths.js';
import type { FailWith, WriteMode } from './write-ops.js';

export interface CommitInfoArg {
  path: string;
  mode?: unknown;
  autorename?: boolean;
  client_modified?: string;
  mute?: boolean;
  strict_conflict?: boolean;
}

export const COMMIT_INFO_FIELDS: Record<string, FieldSpec> = {
  path: { type: 'string', required: true },
  mode: { type: 'union' },
  autorename: { type: 'boolean' },
  client_modified: { type: 'string' },
  mute: { type: 'boolean' },
  property_groups: { type: 'list' },
  strict_conflict: { type: 'boolean' },
};

export const CONTENT_HASH_FIELD: StructSpec = { content_hash: { type: 'string' } };

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const CONTENT_HASH = /^[0-9a-f]{64}$/;

/** Decodes WriteMode; rejects with Dropbox's 400 for a bad tag or a bare "update". */
export function parseWriteMode(route: string, source: string, value: unknown): WriteMode {
  if (value === undefined) {
    return { kind: 'add' };
  }
  const tag = typeof value === 'string' ? value : (value as Record<string, unknown>)['.tag'];
  if (tag === 'add' || tag === 'overwrite') {
    return { kind: tag };
  }
  if (tag === 'update') {
    const rev = typeof value === 'string' ? undefined : (value as Record<string, unknown>).update;
    if (typeof value === 'string') {
      throw badInput(route, `${source}: mode: expected object for 'update', got symbol`);
    }
    if (typeof rev !== 'string' || !/^[0-9a-f]{9,}$/.test(rev)) {
      throw badInput(route, `${source}: mode: update: expected a rev of at least 9 hex digits`);
    }
    return { kind: 'update', rev };
  }
  throw badInput(route, `${source}: mode: unknown tag ${JSON.stringify(tag)}`);
}

/** Checks client_modified and content_hash formats; rejects with a 400. */
export function checkCommitFormats(route: string, source: string, clientModified?: string, contentHash?: string) {
  if (clientModified !== undefined && !isDropboxTimestamp(clientModified)) {
    throw badInput(
      route,
      `${source}: client_modified: time data '${clientModified}' does not match format '%Y-%m-%dT%H:%M:%SZ'`,
    );
  }
  checkContentHashFormat(route, source, contentHash);
}

/** Checks the format of a `content_hash` argument (64 lowercase hex digits); rejects with a 400. */
export function checkContentHashFormat(route: string, source: string, contentHash?: string) {
  if (contentHash !== undefined && !CONTENT_HASH.test(contentHash)) {
    throw badInput(route, `${source}: content_hash: '${contentHash}' did not match pattern '[0-9a-f]{64}'`);
  }
}

/**
 * True for a real UTC time in whole seconds. Date.parse alone accepts 2021-02-29 and 24:00,
 * which strptime's `%Y-%m-%dT%H:%M:%SZ` rejects, so the parsed time must print back the same.
 */
function isDropboxTimestamp(value: string): boolean {
  if (!TIMESTAMP.test(value)) {
    return false;
  }
  const ms = Date.parse(value);
  return !Number.isNaN(ms) && new Date(ms).toISOString() === value.replace('Z', '.000Z');
}

/**
 * Resolves a WritePathOrId to path components. `argument` names the value in a 400 text,
 * e.g. `HTTP header "Dropbox-API-Arg": path`. An `id:` names an existing entry, and a
 * relative part after it may name something new below it.
 * NOTE: an unknown id fails as `malformed_path`; Dropbox's error for it is not documented.
 */
export async function writeComponentsOf(
  context: EmulatorContext,
  route: string,
  path: string,
  argument: string,
  fail: FailWith,
): Promise<string[]> {
  const malformed = (): HttpError => fail({ '.tag': 'malformed_path' });
  const ref = parsePath(path, {
    route,
    pattern: 'writePathOrId',
    rootNamespaceId: context.account.rootNamespaceId,
    argument,
    malformed,
  });
  if (ref.kind === 'path') {
    if (ref.components.length === 0) {
      throw badInput(route, `${argument}: The root folder is unsupported.`);
    }
    return ref.components;
  }
  if (ref.kind !== 'id') {
    throw malformed();
  }
  const start = await lookupEntry(context, { kind: 'id', id: ref.id, components: [] });
  if (start === null) {
    throw malformed();
  }
  return [...start.pathDisplay.split('/').slice(1), ...ref.components];
}
