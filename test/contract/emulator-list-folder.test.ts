import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

interface ListResult {
  entries: Array<Record<string, unknown>>;
  cursor: string;
  has_more: boolean;
}

describe('emulator files/list_folder', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function list(arg: Record<string, unknown>): Promise<ListResult> {
    const reply = await test.rpc('files/list_folder', arg);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    return reply.json() as ListResult;
  }

  async function listAll(arg: Record<string, unknown>): Promise<{ entries: ListResult['entries']; pages: number }> {
    let page = await list(arg);
    const entries = [...page.entries];
    let pages = 1;
    while (page.has_more) {
      const reply = await test.rpc('files/list_folder/continue', { cursor: page.cursor });
      expect(reply.status, reply.text).toBe(200);
      page = reply.json() as ListResult;
      entries.push(...page.entries);
      pages++;
    }
    return { entries, pages };
  }

  it('lists the root with tagged entries', async () => {
    await writeFile(join(test.dataDir, 'Report.TXT'), 'hello');
    await mkdir(join(test.dataDir, 'Photos'));
    const result = await list({ path: '' });
    expect(result.has_more).toBe(false);
    expect(typeof result.cursor).toBe('string');
    expect(result.cursor.length).toBeGreaterThan(0);
    const folder = result.entries.find((entry) => entry.name === 'Photos');
    expect(folder).toEqual({
      '.tag': 'folder',
      name: 'Photos',
      path_lower: '/photos',
      path_display: '/Photos',
      id: expect.stringMatching(/^id:[A-Za-z0-9_-]{22}$/),
    });
    const file = result.entries.find((entry) => entry.name === 'Report.TXT');
    expect(file).toEqual({
      '.tag': 'file',
      name: 'Report.TXT',
      path_lower: '/report.txt',
      path_display: '/Report.TXT',
      id: expect.stringMatching(/^id:[A-Za-z0-9_-]{22}$/),
      client_modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      server_modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      rev: expect.stringMatching(/^[0-9a-f]{9,}$/),
      size: 5,
      is_downloadable: true,
      content_hash: '9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50',
    });
  });

  it('lists a subfolder by path in any case and by id', async () => {
    await mkdir(join(test.dataDir, 'Docs', 'Inner'), { recursive: true });
    await writeFile(join(test.dataDir, 'Docs', 'a.txt'), 'a');
    const byPath = await list({ path: '/dOCS' });
    expect(byPath.entries.map((entry) => entry.path_display).sort()).toEqual(['/Docs/Inner', '/Docs/a.txt']);
    const root = await list({ path: '' });
    const id = root.entries.find((entry) => entry.name === 'Docs')?.id as string;
    const byId = await list({ path: id });
    expect(byId.entries.map((entry) => entry.name).sort()).toEqual(['Inner', 'a.txt']);
    const byIdRelative = await list({ path: `${id}/inner` });
    expect(byIdRelative.entries).toEqual([]);
  });

  it('lists recursively with each folder before its contents', async () => {
    await mkdir(join(test.dataDir, 'A', 'B'), { recursive: true });
    await writeFile(join(test.dataDir, 'A', 'B', 'c.txt'), 'c');
    await writeFile(join(test.dataDir, 'top.txt'), 't');
    const fromRoot = await list({ path: '', recursive: true });
    const paths = fromRoot.entries.map((entry) => entry.path_lower);
    expect(paths.sort()).toEqual(['/a', '/a/b', '/a/b/c.txt', '/top.txt']);
    const ordered = fromRoot.entries.map((entry) => entry.path_lower as string);
    expect(ordered.indexOf('/a')).toBeLessThan(ordered.indexOf('/a/b'));
    const fromFolder = await list({ path: '/a', recursive: true, include_deleted: false });
    expect(fromFolder.entries.map((entry) => entry.path_lower)).toEqual(['/a', '/a/b', '/a/b/c.txt']);
  });

  it('skips symlinks and sockets', async () => {
    await writeFile(join(test.dataDir, 'real.txt'), 'x');
    await symlink(join(test.dataDir, 'real.txt'), join(test.dataDir, 'link.txt'));
    await symlink('/etc', join(test.dataDir, 'escape'));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(test.dataDir, 'sock'), resolve));
    try {
      const result = await list({ path: '', recursive: true });
      expect(result.entries.map((entry) => entry.name)).toEqual(['real.txt']);
      const reply = await test.rpc('files/get_metadata', { path: '/escape/passwd' });
      expect(reply.status).toBe(409);
    } finally {
      server.close();
    }
  });

  it('pages with limit, returning every entry once', async () => {
    await mkdir(join(test.dataDir, 'many'));
    const names = Array.from({ length: 257 }, (_, i) => `file-${String(i).padStart(3, '0')}.txt`);
    await Promise.all(names.map((name) => writeFile(join(test.dataDir, 'many', name), name)));
    const first = await list({ path: '/many', limit: 100 });
    expect(first.entries).toHaveLength(100);
    expect(first.has_more).toBe(true);
    const { entries, pages } = await listAll({ path: '/many', limit: 100 });
    expect(pages).toBe(3);
    const seen = entries.map((entry) => entry.name as string);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual(names);
  });

  it('keeps a paged listing stable while the folder changes', async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => writeFile(join(test.dataDir, `f${i}`), 'x')));
    const first = await list({ path: '', limit: 4 });
    await rename(join(test.dataDir, 'f9'), join(test.dataDir, 'g9'));
    await writeFile(join(test.dataDir, 'new'), 'x');
    const names = first.entries.map((entry) => entry.name);
    let page = first;
    while (page.has_more) {
      page = (await test.rpc('files/list_folder/continue', { cursor: page.cursor })).json() as ListResult;
      names.push(...page.entries.map((entry) => entry.name));
    }
    expect(names).not.toContain('new');
    expect(new Set(names).size).toBe(names.length);
    expect(names).toHaveLength(9);
  });

  it('returns an empty page for the final cursor', async () => {
    await writeFile(join(test.dataDir, 'x'), 'x');
    const result = await list({ path: '' });
    const reply = await test.rpc('files/list_folder/continue', { cursor: result.cursor });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ entries: [], cursor: result.cursor, has_more: false });
  });

  it('resets a paged cursor after a restart', async () => {
    await Promise.all(Array.from({ length: 5 }, (_, i) => writeFile(join(test.dataDir, `f${i}`), 'x')));
    const first = await list({ path: '', limit: 2 });
    await test.restart();
    const reply = await test.rpc('files/list_folder/continue', { cursor: first.cursor });
    expect(reply.status).toBe(409);
    const body = reply.json() as { error_summary: string; error: unknown };
    expect(body.error).toEqual({ '.tag': 'reset' });
    expect(body.error_summary).toMatch(/^reset\/\.{0,3}$/);
  });

  it('rejects a malformed cursor with 400', async () => {
    const reply = await test.rpc('files/list_folder/continue', { cursor: 'garbage!' });
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(reply.text).toMatch(/^Error in call to API function "files\/list_folder\/continue": Invalid "cursor"/);
  });

  it('rejects "/" as the root', async () => {
    const reply = await test.rpc('files/list_folder', { path: '/' });
    expect(reply.status).toBe(400);
    expect(reply.text).toBe(
      'Error in call to API function "files/list_folder": request body: path: Specify the root folder as an empty string rather than as "/".',
    );
  });

  it('rejects a path without a leading slash', async () => {
    const reply = await test.rpc('files/list_folder', { path: 'docs' });
    expect(reply.status).toBe(400);
    expect(reply.text).toContain("request body: path: 'docs' did not match pattern");
  });

  it('returns path/not_found and path/not_folder', async () => {
    await writeFile(join(test.dataDir, 'file.txt'), 'x');
    const missing = await test.rpc('files/list_folder', { path: '/missing' });
    expect(missing.status).toBe(409);
    expect(missing.json()).toEqual({
      error_summary: expect.stringMatching(/^path\/not_found\/\.{0,3}$/),
      error: { '.tag': 'path', path: { '.tag': 'not_found' } },
    });
    const notFolder = await test.rpc('files/list_folder', { path: '/file.txt' });
    expect(notFolder.status).toBe(409);
    expect((notFolder.json() as { error: unknown }).error).toEqual({ '.tag': 'path', path: { '.tag': 'not_folder' } });
  });

  it('returns path/malformed_path for a trailing slash or dot-dot', async () => {
    for (const path of ['/a/', '/a//b', '/..', '/a/../b']) {
      const reply = await test.rpc('files/list_folder', { path });
      expect(reply.status, path).toBe(409);
      expect((reply.json() as { error: unknown }).error, path).toEqual({ '.tag': 'path', path: { '.tag': 'malformed_path' } });
    }
  });

  it('validates limit and field names', async () => {
    for (const limit of [0, 2001, 1.5, '10']) {
      const reply = await test.rpc('files/list_folder', { path: '', limit });
      expect(reply.status, String(limit)).toBe(400);
      expect(reply.text).toContain('request body: limit:');
    }
    const unknown = await test.rpc('files/list_folder', { path: '', recursiv: true });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toBe('Error in call to API function "files/list_folder": request body: unknown field \'recursiv\'');
    const missing = await test.rpc('files/list_folder', {});
    expect(missing.text).toBe('Error in call to API function "files/list_folder": request body: missing required field \'path\'');
    const accepted = await test.rpc('files/list_folder', {
      path: '',
      include_media_info: false,
      include_deleted: true,
      include_has_explicit_shared_members: false,
      include_mounted_folders: true,
      include_non_downloadable_files: true,
    });
    expect(accepted.status).toBe(200);
  });

  it('lists 2,000 entries and 10,000 recursive entries quickly', async () => {
    await mkdir(join(test.dataDir, 'wide'));
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writeFile(join(test.dataDir, 'wide', `w${i}.txt`), `w${i}`)));
    for (let folder = 0; folder < 40; folder++) {
      const dir = join(test.dataDir, 'deep', `d${folder}`);
      await mkdir(dir, { recursive: true });
      await Promise.all(Array.from({ length: 200 }, (_, i) => writeFile(join(dir, `f${i}.txt`), `${folder}/${i}`)));
    }
    const timings: Record<string, number> = {};
    for (const pass of ['cold', 'warm']) {
      let started = performance.now();
      const wide = await list({ path: '/wide', limit: 2000 });
      timings[`wide ${pass}`] = performance.now() - started;
      expect(wide.entries).toHaveLength(2000);
      started = performance.now();
      const { entries } = await listAll({ path: '', recursive: true });
      timings[`recursive ${pass}`] = performance.now() - started;
      expect(entries.length).toBe(1 + 2000 + 1 + 40 + 8000);
    }
    console.log('list_folder timings (ms):', JSON.stringify(timings, (_key, value: unknown) =>
      typeof value === 'number' ? Math.round(value) : value));
    // Generous bounds: these catch per-entry work gone quadratic or synchronous, not jitter.
    expect(timings['wide warm']).toBeLessThan(2000);
    expect(timings['recursive warm']).toBeLessThan(5000);
  });
});
