/**
 * Control endpoints that change the data folder the way another program would, for tests
 * that need such changes journaled deterministically. Each writes to the disk directly
 * (not through the API's commit rules), then rescans the touched folders before it responds,
 * so the change is in the journal when the response arrives. Paths are Dropbox-style
 * ("/Folder/name.txt") in the exact case to use on disk. Bodies are JSON.
 * - POST /_emulator/files/write {path, content_base64, client_modified?}: creates or replaces
 *   a file (written to tmp/ and renamed into place; missing folders are created).
 * - POST /_emulator/files/delete {path}: deletes a file or a folder with its contents.
 * A replaced or deleted file keeps its old contents as an earlier revision, as with
 * files/upload and files/delete_v2, so `rev:OLD` stays readable.
 * - POST /_emulator/files/move {from, to}: renames a file or folder.
 * - POST /_emulator/files/mkdir {path}: creates a folder and missing parents.
 * - POST /_emulator/files/scan: scans the whole data folder now.
 * Success is 200 `{"metadata": Metadata}` (write, move, mkdir) or `{}`; a bad body is 400.
 *
 * GET /_emulator/link/<token> serves a files/get_temporary_link link (410 once expired).
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import type { EmulatorContext } from './context.js';
import { plainError } from './errors.js';
import { readBody, sendJson, streamBody, type Exchange } from './exchange.js';
import { lookupEntry } from './lookup.js';
import { LINK_PATH_PREFIX } from './temporary-links.js';

export const FILES_CONTROL_PREFIX = '/_emulator/files/';
export { LINK_PATH_PREFIX };

const MAX_CONTROL_BODY_BYTES = 200 * 1024 * 1024;

type Body = Record<string, unknown>;

/** Serves POST /_emulator/files/<action>; throws a 400 or 404 HttpError for a bad request. */
export async function serveFilesControl(context: EmulatorContext, exchange: Exchange): Promise<void> {
  if (exchange.req.method !== 'POST') {
    throw plainError(405, 'Use POST for /_emulator/files/ endpoints.', { Allow: 'POST' });
  }
  const action = exchange.url.pathname.slice(FILES_CONTROL_PREFIX.length);
  const text = (await readBody(exchange, MAX_CONTROL_BODY_BYTES)).toString('utf8');
  const body = (text === '' ? {} : JSON.parse(text)) as Body;
  const root = context.folder.root;
  switch (action) {
    case 'write': {
      const target = diskPathOf(root, stringField(body, 'path'));
      const temporary = join(context.state.account.stateFolder.tmpDir, `control-${randomBytes(8).toString('hex')}`);
      await writeFile(temporary, Buffer.from(stringField(body, 'content_base64'), 'base64'));
      if (typeof body.client_modified === 'string') {
        const seconds = Date.parse(body.client_modified) / 1000;
        await utimes(temporary, seconds, seconds);
      }
      await mkdir(dirname(target), { recursive: true });
      await changeKeepingRevision(context, target, () => rename(temporary, target));
      return answer(context, exchange, [dirname(target)], stringField(body, 'path'));
    }
    case 'delete': {
      const target = diskPathOf(root, stringField(body, 'path'));
      await changeKeepingRevision(context, target, () => rm(target, { recursive: true, force: true }));
      return answer(context, exchange, [dirname(target)], null);
    }
    case 'move': {
      const from = diskPathOf(root, stringField(body, 'from'));
      const to = diskPathOf(root, stringField(body, 'to'));
      await mkdir(dirname(to), { recursive: true });
      await rename(from, to);
      // The destination first: its scan finds the old inode and keeps the id.
      return answer(context, exchange, [dirname(to), dirname(from)], stringField(body, 'to'));
    }
    case 'mkdir': {
      const target = diskPathOf(root, stringField(body, 'path'));
      await mkdir(target, { recursive: true });
      return answer(context, exchange, [dirname(target)], stringField(body, 'path'));
    }
    case 'scan':
      await context.state.watcher.scanAll();
      sendJson(exchange, {});
      return;
    default:
      throw plainError(404, `Unknown control endpoint ${exchange.url.pathname}; use write, delete, move, mkdir or scan.`);
  }
}

/** Serves GET /_emulator/link/<token>. */
export async function serveTemporaryLink(context: EmulatorContext, exchange: Exchange): Promise<void> {
  const token = exchange.url.pathname.slice(LINK_PATH_PREFIX.length);
  const id = context.state.links.resolve(token);
  if (id === 'expired') {
    throw plainError(410, 'This temporary link has expired; request a new one.');
  }
  const entry = id === undefined ? null : await lookupEntry(context, { kind: 'id', id, components: [] });
  if (entry === null || entry.kind !== 'file') {
    throw plainError(404, 'Unknown temporary link, or its file was deleted.');
  }
  exchange.res.writeHead(200, {
    'Content-Type': MIME_TYPES[extname(entry.name).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': Number(entry.stat.size),
  });
  await streamBody(exchange, createReadStream(entry.diskPath, { end: Math.max(0, Number(entry.stat.size) - 1) }));
}

const MIME_TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.html': 'text/html',
  '.json': 'application/json',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
  '.pdf': 'application/pdf',
};

/**
 * Runs `change` under the state lock. When `diskPath` is a file, its current contents are
 * first kept as the revision its record names, reconciling the record with the disk first so
 * the rev matches the bytes kept.
 */
async function changeKeepingRevision(context: EmulatorContext, diskPath: string, change: () => Promise<void>) {
  const { account } = context.state;
  const root = await context.folder.rootEntry();
  const relative = diskPath.slice(context.folder.root.length).split('/').filter((name) => name !== '');
  await account.exclusive(async () => {
    const entry = await context.folder.resolve(root, relative);
    if (entry !== null && entry.kind === 'file' && entry.diskPath === diskPath) {
      const record = await account.reconcileLocked(entry);
      await account.revisions.keep(entry.diskPath, entry.pathLower, record);
    }
    await change();
  });
}

async function answer(
  context: EmulatorContext,
  exchange: Exchange,
  folders: string[],
  describedPath: string | null,
): Promise<void> {
  const { account } = context.state;
  const root = await context.folder.rootEntry();
  await account.exclusive(async () => {
    for (const folder of folders) {
      const relative = folder.slice(context.folder.root.length).split('/').filter((name) => name !== '');
      const entry = await context.folder.resolve(root, relative);
      if (entry !== null && entry.kind === 'folder') {
        await account.scanLocked(entry, false);
      }
    }
  });
  if (describedPath === null) {
    sendJson(exchange, {});
    return;
  }
  const entry = await context.folder.resolve(root, describedPath.split('/').filter((name) => name !== ''));
  sendJson(exchange, { metadata: entry === null ? null : await account.describe(entry) });
}

function stringField(body: Body, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') {
    throw plainError(400, `Missing or invalid string field "${name}" in the JSON body.`);
  }
  return value;
}

/** Maps a Dropbox-style path to a path inside the data folder; rejects '..' components. */
function diskPathOf(root: string, path: string): string {
  const components = path.split('/').filter((name) => name !== '');
  if (!path.startsWith('/') || components.length === 0 || components.some((name) => name === '.' || name === '..')) {
    throw plainError(400, `Invalid path ${JSON.stringify(path)}; use "/Folder/name" below the root.`);
  }
  return join(root, ...components);
}
