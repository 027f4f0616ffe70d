import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MetadataCache } from '../../src/cache/metadata-cache.js';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { ApiError } from '../../src/dropbox/errors.js';
import type { Metadata } from '../../src/dropbox/types.js';

const file = (pathDisplay: string, size = 1, pathLower = pathDisplay.toLowerCase()): Metadata => ({
  '.tag': 'file',
  name: pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1),
  id: `id:${pathLower}`,
  path_lower: pathLower,
  path_display: pathDisplay,
  client_modified: '2024-05-06T07:08:09Z',
  server_modified: '2024-05-06T07:08:09Z',
  rev: '0123456789',
  size,
});
const folder = (pathDisplay: string, pathLower = pathDisplay.toLowerCase()): Metadata => ({
  '.tag': 'folder',
  name: pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1),
  id: `id:${pathLower}`,
  path_lower: pathLower,
  path_display: pathDisplay,
});
const deleted = (pathDisplay: string): Metadata => ({
  '.tag': 'deleted',
  name: pathDisplay.slice(pathDisplay.lastIndexOf('/') + 1),
  path_lower: pathDisplay.toLowerCase(),
  path_display: pathDisplay,
});

// A recursive listing whose path_display spells parents in another case than their entries,
// as Dropbox does for a file created under a differently cased path.
const TREE: Metadata[] = [
  folder('/Documents'),
  folder('/Documents/Finance'),
  file('/documents/FINANCE/a.pdf', 99),
  file('/DOCUMENTS/b.txt', 2),
  folder('/Empty'),
  file('/top.txt', 3),
];

// A fake client: recursive list_folder serves TREE two entries a page, per-folder list_folder
// serves the children of a folder, and get_metadata finds nothing.
function fakeClient(tree: Metadata[] = TREE) {
  const calls: { route: string; arg: Record<string, unknown> }[] = [];
  const childrenOf = (folderLower: string) =>
    tree.filter((entry) => {
      const lower = entry.path_lower ?? '';
      return lower.slice(0, lower.lastIndexOf('/')) === folderLower;
    });
  const page = (entries: Metadata[], start: number) => ({
    entries: entries.slice(start, start + 2),
    cursor: JSON.stringify(start + 2),
    has_more: start + 2 < entries.length,
  });
  let listed: Metadata[] = [];
  const client = {
    async rpc(route: string, arg: Record<string, unknown>) {
      calls.push({ route, arg });
      if (route === 'files/list_folder') {
        listed = arg.recursive ? tree : childrenOf(String(arg.path).toLowerCase());
        return page(listed, 0);
      }
      if (route === 'files/list_folder/continue') return page(listed, JSON.parse(String(arg.cursor)) as number);
      throw new ApiError(route, 409, ['path', 'not_found'], {});
    },
  };
  return { client: client as unknown as DropboxClient, calls };
}

function makeCache(client: DropboxClient, maxEntries = 10_000) {
  return new MetadataCache({ client, rootPath: '', ttlMs: 60_000, maxEntries, dirMtimeMs: 1000 });
}

const names = async (cache: MetadataCache, path: string) =>
  [...(await cache.listing(path)).children.values()].map((node) => node.name);

describe('MetadataCache prefetch', () => {
  it('fills every listing from one recursive listing', async () => {
    const { client, calls } = fakeClient();
    const cache = makeCache(client);
    const outcome = await cache.prefetch(1000);
    expect('cursor' in outcome).toBe(true);
    const before = calls.length;
    expect(await names(cache, '/')).toEqual(['Documents', 'Empty', 'top.txt']);
    expect(await names(cache, '/documents')).toEqual(['Finance', 'b.txt']);
    expect(await names(cache, '/Documents/Finance')).toEqual(['a.pdf']);
    expect(await names(cache, '/Empty')).toEqual([]);
    expect((await cache.lookup('/DOCUMENTS/finance/A.PDF')).size).toBe(99);
    expect(calls.length).toBe(before);
  });

  it('places entries by path_lower', async () => {
    const { client } = fakeClient();
    const cache = makeCache(client);
    await cache.prefetch(1000);
    const node = await cache.lookup('/Documents/Finance/a.pdf');
    expect(node.name).toBe('a.pdf');
    expect(await names(cache, '/')).not.toContain('documents');
    expect(await names(cache, '/')).not.toContain('DOCUMENTS');
  });

  it('stops past the limit and caches nothing', async () => {
    const { client, calls } = fakeClient();
    const cache = makeCache(client);
    const outcome = await cache.prefetch(3);
    expect(outcome).toEqual({ overLimit: true, entryCount: 4 });
    const before = calls.length;
    expect(await names(cache, '/')).toEqual(['Documents', 'Empty', 'top.txt']);
    expect(calls.length).toBe(before + 2);
  });
});

describe('MetadataCache changes', () => {
  async function prefetched() {
    const fake = fakeClient();
    const cache = makeCache(fake.client);
    await cache.prefetch(1000);
    return { cache, ...fake };
  }

  it('adds a new file to a cached listing', async () => {
    const { cache } = await prefetched();
    cache.applyChanges([file('/Documents/new.txt', 7)]);
    expect(await names(cache, '/Documents')).toContain('new.txt');
    expect((await cache.lookup('/documents/NEW.txt')).size).toBe(7);
  });

  it('replaces a file in place', async () => {
    const { cache } = await prefetched();
    cache.applyChanges([file('/top.txt', 42)]);
    expect((await cache.lookup('/top.txt')).size).toBe(42);
    expect(await names(cache, '/')).toEqual(['Documents', 'Empty', 'top.txt']);
  });

  it('deletes a folder and its contents', async () => {
    const { cache, calls } = await prefetched();
    cache.applyChanges([deleted('/Documents')]);
    const before = calls.length;
    await expect(cache.lookup('/Documents')).rejects.toMatchObject({ errno: constants.errno.ENOENT });
    await expect(cache.lookup('/Documents/Finance/a.pdf')).rejects.toMatchObject({ errno: constants.errno.ENOENT });
    expect(await names(cache, '/')).toEqual(['Empty', 'top.txt']);
    expect(calls.length).toBe(before);
  });

  it('replaces a folder with a file', async () => {
    const { cache } = await prefetched();
    cache.applyChanges([file('/Documents', 5)]);
    expect((await cache.lookup('/Documents')).kind).toBe('file');
    await expect(cache.lookup('/Documents/b.txt')).rejects.toMatchObject({ errno: constants.errno.ENOTDIR });
  });

  it('keeps a folder listing on a folder update', async () => {
    const { cache, calls } = await prefetched();
    cache.applyChanges([folder('/Documents')]);
    const before = calls.length;
    expect(await names(cache, '/Documents')).toEqual(['Finance', 'b.txt']);
    expect(calls.length).toBe(before);
  });

  it('applies a move as delete then add', async () => {
    const { cache } = await prefetched();
    cache.applyChanges([deleted('/top.txt'), file('/Empty/top.txt', 3)]);
    expect(await names(cache, '/')).toEqual(['Documents', 'Empty']);
    expect(await names(cache, '/Empty')).toEqual(['top.txt']);
  });

  it('ignores changes outside the root', async () => {
    const { client } = fakeClient([file('/Inside/a.txt')].map((entry) => ({ ...entry, path_lower: '/inside/a.txt' })));
    const cache = new MetadataCache({ client, rootPath: '/Inside', ttlMs: 60_000, maxEntries: 10_000, dirMtimeMs: 1 });
    await cache.prefetch(1000);
    cache.applyChanges([file('/Outside/b.txt'), file('/Inside/c.txt')]);
    expect(await names(cache, '/')).toEqual(['a.txt', 'c.txt']);
  });
});

describe('MetadataCache negative entries', () => {
  // 1,200 files in /big, over the 1,000-entry cache, so /big is never kept as a listing.
  const bigTree = [folder('/big'), ...Array.from({ length: 1200 }, (_, i) => file(`/big/f${i}.txt`))];

  it('answers a missing name once', async () => {
    const { client, calls } = fakeClient(bigTree);
    const cache = makeCache(client, 1000);
    for (let i = 0; i < 5; i++) {
      await expect(cache.lookup('/big/missing.txt')).rejects.toMatchObject({ errno: constants.errno.ENOENT });
    }
    const bigCalls = calls.filter((call) => call.arg.path === '/big' || call.route === 'files/get_metadata');
    expect(bigCalls.map((call) => call.route)).toEqual(['files/list_folder']);
  });

  it('drops a missing name on a change', async () => {
    const { client } = fakeClient(bigTree);
    const cache = makeCache(client, 1000);
    await expect(cache.lookup('/big/missing.txt')).rejects.toMatchObject({ errno: constants.errno.ENOENT });
    cache.applyChanges([file('/big/missing.txt', 9)]);
    // The fake's get_metadata finds nothing, so a lookup that reached it would fail with
    // not_found: ENOENT here would mean the negative entry survived.
    await expect(cache.lookup('/big/missing.txt')).rejects.toBeInstanceOf(ApiError);
  });

  it('caches not_found from get_metadata', async () => {
    const { client, calls } = fakeClient(bigTree);
    const cache = makeCache(client, 1000);
    await cache.listing('/big');
    for (let i = 0; i < 3; i++) {
      await expect(cache.lookup('/big/other.txt')).rejects.toBeDefined();
    }
    expect(calls.filter((call) => call.route === 'files/get_metadata').length).toBe(1);
  });
});
