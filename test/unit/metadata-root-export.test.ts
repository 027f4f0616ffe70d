import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangeWatcher } from '../../src/cache/change-watcher.js';
import { MetadataCache, type Node } from '../../src/cache/metadata-cache.js';
import { loadSnapshot, saveSnapshot, restoreSnapshot } from '../../src/cache/metadata-snapshot.js';
import { exportExtension, toNode } from '../../src/cache/nodes.js';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { ApiError } from '../../src/dropbox/errors.js';
import type { FileMetadata, Metadata } from '../../src/dropbox/types.js';
import { FsError } from '../../src/fs/errno.js';
import { silentLogger } from '../../src/log/logger.js';

const paper = (dir: string, name: string, exportAs?: string): FileMetadata & { '.tag': 'file' } => ({
  '.tag': 'file',
  name,
  id: `id:${name}`,
  path_lower: `${dir}/${name}`.toLowerCase(),
  path_display: `${dir}/${name}`,
  client_modified: '2024-05-06T07:08:09Z',
  server_modified: '2024-05-06T07:08:09Z',
  rev: '0123456789',
  size: 0,
  is_downloadable: false,
  ...(exportAs === undefined ? {} : { export_info: { export_as: exportAs, export_options: [exportAs] } }),
});
const plain = (dir: string, name: string): FileMetadata & { '.tag': 'file' } => ({ ...paper(dir, name), is_downloadable: true, size: 3 });
const folderEntry = (dir: string, name: string): Metadata => ({
  '.tag': 'folder',
  name,
  id: `id:${name}`,
  path_lower: `${dir}/${name}`.toLowerCase(),
  path_display: `${dir}/${name}`,
});

// A fake client that lists one folder, `/Root`, with the given entries in one page.
function listingClient(entries: Metadata[]) {
  const calls: string[] = [];
  const client = {
    async rpc(route: string, arg: { path?: string; cursor?: string }) {
      calls.push(`${route} ${arg.path ?? arg.cursor ?? ''}`);
      if (route === 'files/list_folder' && arg.path === '/Root') return { entries, cursor: 'c1', has_more: false };
      if (route === 'files/list_folder/continue' && arg.cursor === 'saved') return { entries: [], cursor: 'c2', has_more: false };
      throw new ApiError(route, 409, ['path', 'not_found'], {});
    },
  };
  return { client: client as unknown as DropboxClient, calls };
}

const newCache = (client: DropboxClient, nonDownloadable: 'export' | 'hide' = 'export') =>
  new MetadataCache({ client, rootPath: '/Root', ttlMs: 60_000, maxEntries: 1000, dirMtimeMs: 0, nonDownloadable });

describe('toNode export names', () => {
  it('appends the export_as extension', () => {
    expect(toNode(paper('', 'Notes.paper', 'markdown'), 0)?.name).toBe('Notes.paper.md');
    expect(toNode(paper('', 'Page.paper', 'html'), 0)?.name).toBe('Page.paper.html');
    expect(toNode(paper('', 'Text.paper', 'plain_text'), 0)?.name).toBe('Text.paper.txt');
  });

  it('defaults to markdown without export_info', () => {
    const node = toNode(paper('', 'Notes.paper'), 0);
    expect(node?.name).toBe('Notes.paper.md');
    expect(node?.exportFormat).toBe('markdown');
    expect(node?.size).toBe(0);
  });

  it('names an unknown format after itself', () => {
    expect(exportExtension('docx')).toBe('.docx');
    expect(exportExtension('a/b')).toBe('.a_b');
  });

  it('hides under the hide policy', () => {
    expect(toNode(paper('', 'Notes.paper', 'markdown'), 0, 'hide')).toBeUndefined();
    expect(toNode(plain('', 'a.txt'), 0, 'hide')?.name).toBe('a.txt');
  });
});

describe('MetadataCache exported files', () => {
  it('looks up the exported name', async () => {
    const { client } = listingClient([paper('/Root', 'Notes.paper', 'markdown'), plain('/Root', 'a.txt')]);
    const cache = newCache(client);
    const node = await cache.lookup('/notes.paper.md');
    expect(node.exportFormat).toBe('markdown');
    await expect(cache.lookup('/Notes.paper')).rejects.toBeInstanceOf(FsError);
  });

  it('removes the exported name on deletion', async () => {
    const { client } = listingClient([paper('/Root', 'Notes.paper', 'markdown')]);
    const cache = newCache(client);
    await cache.listing('/');
    cache.applyChanges([{ '.tag': 'deleted', name: 'Notes.paper', path_lower: '/root/notes.paper' }]);
    expect([...(await cache.listing('/')).children.keys()]).toEqual([]);
  });

  it('leaves hidden files out of listings', async () => {
    const { client } = listingClient([paper('/Root', 'Notes.paper', 'markdown'), plain('/Root', 'a.txt')]);
    const cache = newCache(client, 'hide');
    expect([...(await cache.listing('/')).children.keys()]).toEqual(['a.txt']);
  });
});

describe('MetadataCache root changes', () => {
  it('keeps listings when re-keyed', async () => {
    const { client, calls } = listingClient([plain('/Root', 'a.txt')]);
    const cache = newCache(client);
    await cache.listing('/');
    cache.setRootPath('/Moved');
    expect(cache.rootPath).toBe('/Moved');
    expect((await cache.lookup('/a.txt')).name).toBe('a.txt');
    cache.applyChanges([{ ...plain('/Moved', 'b.txt') }]);
    expect((await cache.lookup('/b.txt')).name).toBe('b.txt');
    expect(calls).toEqual(['files/list_folder /Root']);
  });

  it('answers ENOENT while the root is missing', async () => {
    const { client, calls } = listingClient([plain('/Root', 'a.txt')]);
    const cache = newCache(client);
    cache.setRootMissing(true);
    await expect(cache.lookup('/a.txt')).rejects.toMatchObject({ errno: expect.any(Number) });
    expect((await cache.listing('/')).children.size).toBe(0);
    expect((await cache.lookup('/')).kind).toBe('dir');
    expect(calls).toEqual([]);
  });
});

type Step = { route: string; result?: unknown; error?: Error };

// Returns the next scripted step for each call's route; a route with no step left never settles.
function scriptedClient(steps: Step[]) {
  const calls: { route: string; arg: unknown }[] = [];
  const answer = async (route: string, arg: unknown) => {
    calls.push({ route, arg });
    const index = steps.findIndex((step) => step.route === route);
    if (index === -1) return new Promise(() => {});
    const [step] = steps.splice(index, 1);
    if (step?.error) throw step.error;
    return step?.result;
  };
  return { client: { rpc: answer, notifyRpc: answer } as unknown as DropboxClient, calls };
}

const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

describe('ChangeWatcher root by id', () => {
  it('follows a moved root', async () => {
    const { client, calls } = scriptedClient([
      { route: 'files/list_folder/longpoll', result: { changes: true } },
      {
        route: 'files/list_folder/continue',
        result: { entries: [{ '.tag': 'deleted', name: 'Root', path_lower: '/root' }], cursor: 'c2', has_more: false },
      },
      { route: 'files/get_metadata', result: folderEntry('/Else', 'Moved') },
      { route: 'files/list_folder/get_latest_cursor', result: { cursor: 'c3' } },
    ]);
    const cache = newCache(client);
    const watcher = new ChangeWatcher({ client, cache, rootPath: '/Root', rootId: 'id:root', log: silentLogger() });
    watcher.start(Promise.resolve('c1'));
    await waitFor(() => calls.filter((call) => call.route === 'files/list_folder/longpoll').length === 2);
    await watcher.stop();
    expect(cache.rootPath).toBe('/Else/Moved');
    expect(calls.find((call) => call.route === 'files/get_metadata')?.arg).toEqual({ path: 'id:root' });
    expect(calls.find((call) => call.route === 'files/list_folder/get_latest_cursor')?.arg).toEqual({
      path: '/Else/Moved',
      recursive: true,
    });
    expect(watcher.cursor).toBe('c3');
  });

  it('marks a deleted root missing until it returns', async () => {
    const notFound = () => new ApiError('files/get_metadata', 409, ['path', 'not_found'], {});
    const { client, calls } = scriptedClient([
      { route: 'files/list_folder/longpoll', result: { changes: true } },
      { route: 'files/list_folder/continue', error: new ApiError('files/list_folder/continue', 409, ['path', 'not_found'], {}) },
      { route: 'files/get_metadata', error: notFound() },
      { route: 'files/get_metadata', error: notFound() },
      { route: 'files/get_metadata', result: folderEntry('', 'Root') },
      { route: 'files/list_folder/get_latest_cursor', result: { cursor: 'c3' } },
    ]);
    const cache = newCache(client);
    const missing: boolean[] = [];
    const original = cache.setRootMissing.bind(cache);
    cache.setRootMissing = (value: boolean) => {
      missing.push(value);
      original(value);
    };
    const watcher = new ChangeWatcher({ client, cache, rootPath: '/Root', rootId: 'id:root', rootCheckMs: 20, log: silentLogger() });
    watcher.start(Promise.resolve('c1'));
    await waitFor(() => calls.filter((call) => call.route === 'files/list_folder/longpoll').length === 2);
    await watcher.stop();
    expect(missing).toEqual([true, false]);
    expect(calls.filter((call) => call.route === 'files/get_metadata').length).toBe(3);
    expect(cache.rootMissing).toBe(false);
  });
});

describe('metadata snapshot', () => {
  const identity = { apiUrl: 'http://127.0.0.1:1', root: '/Root' };

  it('round-trips listings with mode 0600', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-snapshot-unit-'));
    try {
      const { client } = listingClient([paper('/Root', 'Notes.paper', 'markdown'), plain('/Root', 'a.txt')]);
      const cache = newCache(client);
      await cache.listing('/');
      const file = path.join(dir, 'snapshot.json');
      await saveSnapshot(file, identity, cache, 'saved');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const loaded = await loadSnapshot(file, identity, silentLogger());
      expect(loaded?.cursor).toBe('saved');
      expect(loaded?.entryCount).toBe(2);
      const children = loaded?.listings[0]?.[1].children;
      expect([...(children?.keys() ?? [])]).toEqual(['notes.paper.md', 'a.txt']);
      expect((children?.get('notes.paper.md') as Node).exportFormat).toBe('markdown');
      expect(await loadSnapshot(file, { ...identity, root: '/Other' }, silentLogger())).toBeUndefined();
      expect(JSON.parse(await readFile(file, 'utf8')).rootPath).toBe('/Root');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('restores with one continue call', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-snapshot-unit-'));
    try {
      const first = listingClient([plain('/Root', 'a.txt')]);
      const written = newCache(first.client);
      await written.listing('/');
      const file = path.join(dir, 'snapshot.json');
      await saveSnapshot(file, identity, written, 'saved');

      const second = listingClient([]);
      const cache = newCache(second.client);
      const cursor = await restoreSnapshot({ file, identity, cache, client: second.client, log: silentLogger() });
      expect(cursor).toBe('c2');
      expect((await cache.lookup('/a.txt')).name).toBe('a.txt');
      expect(second.calls).toEqual(['files/list_folder/continue saved']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drops a snapshot whose cursor was reset', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-snapshot-unit-'));
    try {
      const { client } = listingClient([plain('/Root', 'a.txt')]);
      const written = newCache(client);
      await written.listing('/');
      const file = path.join(dir, 'snapshot.json');
      await saveSnapshot(file, identity, written, 'stale');
      const cache = newCache(client);
      const cursor = await restoreSnapshot({ file, identity, cache, client, log: silentLogger() });
      expect(cursor).toBeUndefined();
      expect(cache.listingsSnapshot()).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MetadataCache exported names by get_metadata', () => {
  // Lists /Root with one folder, `big`, whose three entries are more than the cache keeps, so
  // that names in it are looked up with get_metadata.
  function largeFolderClient() {
    const bigEntries = [paper('/Root/big', 'Notes.paper', 'markdown'), plain('/Root/big', 'a.txt'), plain('/Root/big', 'b.txt')];
    const calls: string[] = [];
    const client = {
      async rpc(route: string, arg: { path?: string }) {
        calls.push(`${route} ${arg.path ?? ''}`);
        if (route === 'files/list_folder' && arg.path === '/Root') {
          return { entries: [folderEntry('/Root', 'big')], cursor: 'c', has_more: false };
        }
        if (route === 'files/list_folder' && arg.path === '/Root/big') return { entries: bigEntries, cursor: 'c', has_more: false };
        const found = bigEntries.find((entry) => entry.path_lower === arg.path?.toLowerCase());
        if (route === 'files/get_metadata' && found !== undefined) return found;
        throw new ApiError(route, 409, ['path', 'not_found'], {});
      },
    };
    return { client: client as unknown as DropboxClient, calls };
  }

  it('finds an export in a large folder', async () => {
    const { client, calls } = largeFolderClient();
    const cache = new MetadataCache({ client, rootPath: '/Root', ttlMs: 60_000, maxEntries: 3, dirMtimeMs: 0 });
    expect((await cache.listing('/big')).children.size).toBe(3);
    calls.length = 0;
    const node = await cache.lookup('/big/Notes.paper.md');
    expect(node.exportFormat).toBe('markdown');
    expect(calls).toEqual(['files/get_metadata /Root/big/Notes.paper.md', 'files/get_metadata /Root/big/Notes.paper']);
  });

  it('costs one call for a missing plain name', async () => {
    const { client, calls } = largeFolderClient();
    const cache = new MetadataCache({ client, rootPath: '/Root', ttlMs: 60_000, maxEntries: 3, dirMtimeMs: 0 });
    await cache.listing('/big');
    calls.length = 0;
    await expect(cache.lookup('/big/missing.txt')).rejects.toBeDefined();
    expect(calls).toEqual(['files/get_metadata /Root/big/missing.txt']);
  });
});
