import { describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { MetadataCache } from '../../src/cache/metadata-cache.js';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { ApiError } from '../../src/dropbox/errors.js';
import { FsError } from '../../src/fs/errno.js';

type Entry = { '.tag': 'file' | 'folder'; name: string; path_display: string; id: string; size?: number };

// A fake client over a fixed tree: folder path (lower-cased) to entries, paged two at a time.
function fakeClient(tree: Record<string, Entry[]>) {
  const calls: { route: string; arg: unknown }[] = [];
  const client = {
    async rpc(route: string, arg: { path?: string; cursor?: string }) {
      calls.push({ route, arg });
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (route === 'files/list_folder' || route === 'files/list_folder/continue') {
        const [folder, start] =
          route === 'files/list_folder' ? [(arg.path ?? '').toLowerCase(), 0] : (JSON.parse(arg.cursor ?? '') as [string, number]);
        const entries = tree[folder];
        if (!entries) throw new ApiError(route, 409, ['path', 'not_found'], {});
        const page = entries.slice(start, start + 2).map((entry) => ({
          client_modified: '2024-05-06T07:08:09Z',
          server_modified: '2024-05-06T07:08:09Z',
          rev: '0123456789',
          size: 0,
          ...entry,
        }));
        return { entries: page, cursor: JSON.stringify([folder, start + 2]), has_more: start + 2 < entries.length };
      }
      throw new ApiError(route, 409, ['path', 'not_found'], {});
    },
  };
  return { client: client as unknown as DropboxClient, calls };
}

const file = (dir: string, name: string, size = 3): Entry => ({
  '.tag': 'file',
  name,
  path_display: `${dir}/${name}`,
  id: `id:${name}`,
  size,
});
const folder = (dir: string, name: string): Entry => ({ '.tag': 'folder', name, path_display: `${dir}/${name}`, id: `id:${name}` });

const tree = {
  '': [folder('', 'Documents'), file('', 'top.txt')],
  '/documents': [
    folder('/Documents', 'Finance'),
    file('/Documents', 'a.txt', 10),
    file('/Documents', 'b.txt'),
    file('/Documents', 'Cre\u0300me.txt'.normalize('NFC')),
    file('/Documents', 'c.txt'),
  ],
  '/documents/finance': [file('/Documents/Finance', 'a.pdf', 99)],
};

function makeCache(client: DropboxClient, rootPath = '') {
  return new MetadataCache({ client, rootPath, ttlMs: 60_000, maxEntries: 10_000, dirMtimeMs: 1000 });
}

describe('MetadataCache', () => {
  it('lists a folder across pages once', async () => {
    const { client, calls } = fakeClient(tree);
    const cache = makeCache(client);
    const listing = await cache.listing('/Documents');
    expect([...listing.children.values()].map((node) => node.name)).toEqual([
      'Finance',
      'a.txt',
      'b.txt',
      'Crème.txt',
      'c.txt',
    ]);
    expect(calls.map((call) => call.route)).toEqual([
      'files/list_folder',
      'files/list_folder/continue',
      'files/list_folder/continue',
    ]);
  });

  it('answers stats in a listed folder without calls', async () => {
    const { client, calls } = fakeClient(tree);
    const cache = makeCache(client);
    await cache.listing('/Documents');
    const before = calls.length;
    const node = await cache.lookup('/Documents/a.txt');
    expect(node.size).toBe(10);
    expect(node.mtimeMs).toBe(Date.parse('2024-05-06T07:08:09Z'));
    await expect(cache.lookup('/Documents/missing.txt')).rejects.toMatchObject({ errno: constants.errno.ENOENT });
    expect(calls.length).toBe(before);
  });

  it('ignores case and normalization in lookups', async () => {
    const { client } = fakeClient(tree);
    const cache = makeCache(client);
    expect((await cache.lookup('/documents/FINANCE/A.PDF')).size).toBe(99);
    expect((await cache.lookup('/Documents/cre\u0300me.TXT'.normalize('NFD'))).name).toBe('Crème.txt');
  });

  it('shares one listing between concurrent lookups', async () => {
    const { client, calls } = fakeClient(tree);
    const cache = makeCache(client);
    await Promise.all(['a.txt', 'b.txt', 'c.txt', 'Finance'].map((name) => cache.lookup(`/Documents/${name}`)));
    const firstPages = calls.filter((call) => call.route === 'files/list_folder');
    expect(firstPages.map((call) => call.arg)).toEqual([
      { path: '', limit: 2000 },
      { path: '/Documents', limit: 2000 },
    ]);
  });

  it('reports a file used as a folder as ENOTDIR', async () => {
    const { client } = fakeClient(tree);
    const cache = makeCache(client);
    const error = await cache.lookup('/top.txt/inner').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(FsError);
    expect((error as FsError).errno).toBe(constants.errno.ENOTDIR);
  });

  it('prefixes the root path in API calls', async () => {
    const { client, calls } = fakeClient({ '/documents': tree['/documents'] });
    const cache = makeCache(client, '/Documents');
    expect((await cache.lookup('/a.txt')).size).toBe(10);
    expect(calls[0]?.arg).toEqual({ path: '/Documents', limit: 2000 });
  });
});
