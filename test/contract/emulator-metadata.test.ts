import { appendFile, mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Metadata = Record<string, unknown>;

describe('emulator files/get_metadata', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function metadata(path: string): Promise<Metadata> {
    const reply = await test.rpc('files/get_metadata', { path });
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Metadata;
  }

  it('describes a file with .tag and every FileMetadata field', async () => {
    await mkdir(join(test.dataDir, 'Docs'));
    await writeFile(join(test.dataDir, 'Docs', 'Hello.txt'), 'hello');
    await utimes(join(test.dataDir, 'Docs', 'Hello.txt'), 1_700_000_000.75, 1_700_000_000.75);
    const file = await metadata('/docs/HELLO.txt');
    expect(file).toEqual({
      '.tag': 'file',
      name: 'Hello.txt',
      path_lower: '/docs/hello.txt',
      path_display: '/Docs/Hello.txt',
      id: expect.stringMatching(/^id:[A-Za-z0-9_-]{22}$/),
      client_modified: '2023-11-14T22:13:20Z',
      server_modified: '2023-11-14T22:13:20Z',
      rev: expect.stringMatching(/^[0-9a-f]{9,}$/),
      size: 5,
      is_downloadable: true,
      content_hash: '9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50',
    });
    expect(Object.keys(file)[0]).toBe('.tag');
  });

  it('describes a folder', async () => {
    await mkdir(join(test.dataDir, 'Photos'));
    expect(await metadata('/PHOTOS')).toEqual({
      '.tag': 'folder',
      name: 'Photos',
      path_lower: '/photos',
      path_display: '/Photos',
      id: expect.stringMatching(/^id:/),
    });
  });

  it('rejects the root with 400', async () => {
    const slash = await test.rpc('files/get_metadata', { path: '/' });
    expect(slash.status).toBe(400);
    expect(slash.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(slash.text).toBe('Error in call to API function "files/get_metadata": request body: path: The root folder is unsupported.');
    const empty = await test.rpc('files/get_metadata', { path: '' });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain("request body: path: '' did not match pattern");
  });

  it('returns path/not_found for a missing entry', async () => {
    const reply = await test.rpc('files/get_metadata', { path: '/missing/deeper' });
    expect(reply.status).toBe(409);
    expect(reply.headers['content-type']).toBe('application/json');
    const body = reply.json() as { error_summary: string; error: unknown };
    expect(body.error_summary).toMatch(/^path\/not_found\/\.{0,3}$/);
    expect(body.error).toEqual({ '.tag': 'path', path: { '.tag': 'not_found' } });
  });

  it('keeps the id across renames and restarts', async () => {
    await writeFile(join(test.dataDir, 'a.txt'), 'a');
    const before = await metadata('/a.txt');
    await mkdir(join(test.dataDir, 'moved'));
    await rename(join(test.dataDir, 'a.txt'), join(test.dataDir, 'moved', 'B.txt'));
    await test.restart();
    const after = await metadata('/moved/b.txt');
    expect(after.id).toBe(before.id);
    const byId = await metadata(before.id as string);
    expect(byId.path_display).toBe('/moved/B.txt');
  });

  it('resolves id:<id>/relative paths', async () => {
    await mkdir(join(test.dataDir, 'Top', 'Sub'), { recursive: true });
    await writeFile(join(test.dataDir, 'Top', 'Sub', 'f.txt'), 'f');
    const top = await metadata('/top');
    const file = await metadata(`${top.id as string}/sub/F.TXT`);
    expect(file.path_display).toBe('/Top/Sub/f.txt');
    const missing = await test.rpc('files/get_metadata', { path: 'id:AAAAAAAAAAAAAAAAAAAAAA' });
    expect(missing.status).toBe(409);
  });

  it('changes the rev on every write', async () => {
    const file = join(test.dataDir, 'w.txt');
    await writeFile(file, 'one');
    const first = await metadata('/w.txt');
    await appendFile(file, 'two');
    const second = await metadata('/w.txt');
    await writeFile(file, 'six');
    await utimes(file, 1_800_000_000, 1_800_000_000);
    const third = await metadata('/w.txt');
    expect(new Set([first.rev, second.rev, third.rev]).size).toBe(3);
    expect(second.content_hash).not.toBe(first.content_hash);
    expect(third.size).toBe(3);
  });

  it('accepts rev: paths for the current revision', async () => {
    await writeFile(join(test.dataDir, 'r.txt'), 'r');
    const file = await metadata('/r.txt');
    const byRev = await metadata(`rev:${file.rev as string}`);
    expect(byRev.id).toBe(file.id);
  });

  it('accepts ns: paths in the root namespace', async () => {
    await writeFile(join(test.dataDir, 'n.txt'), 'n');
    const account = (await test.rpc('users/get_current_account', undefined)).json() as {
      root_info: { root_namespace_id: string };
    };
    const file = await metadata(`ns:${account.root_info.root_namespace_id}/N.txt`);
    expect(file.path_lower).toBe('/n.txt');
    const other = await test.rpc('files/get_metadata', { path: 'ns:1/n.txt' });
    expect(other.status).toBe(409);
  });

  it('lowercases and NFC-normalizes path_lower', async () => {
    const decomposed = 'Cafe\u0301.txt';
    await writeFile(join(test.dataDir, decomposed), 'x');
    const byNfc = await metadata('/caf\u00e9.TXT');
    expect(byNfc.name).toBe(decomposed);
    expect(byNfc.path_display).toBe(`/${decomposed}`);
    expect(byNfc.path_lower).toBe('/caf\u00e9.txt');
    const byStoredForm = await metadata(`/${decomposed.toUpperCase()}`);
    expect(byStoredForm.id).toBe(byNfc.id);
  });

  it('rejects unknown fields in the argument', async () => {
    const reply = await test.rpc('files/get_metadata', { path: '/x', include_everything: true });
    expect(reply.status).toBe(400);
    expect(reply.text).toBe('Error in call to API function "files/get_metadata": request body: unknown field \'include_everything\'');
  });
});
