import { readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contentHashOf } from '../../src/dropbox/content-hash.js';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;

describe('emulator files/upload', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator({ quotaBytes: 1_000_000 });
  });

  afterEach(async () => {
    await test.close();
  });

  async function upload(arg: Json, body: string | Buffer): Promise<Json> {
    const reply = await test.upload('files/upload', arg, body);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    return reply.json() as Json;
  }

  async function uploadError(arg: Json, body: string | Buffer): Promise<Json> {
    const reply = await test.upload('files/upload', arg, body);
    expect(reply.status, reply.text).toBe(409);
    return reply.json() as Json;
  }

  it('writes the bytes and returns FileMetadata without .tag', async () => {
    const result = await upload({ path: '/Docs/New.txt', client_modified: '2020-01-02T03:04:05Z' }, 'hello');
    expect(result).toEqual({
      name: 'New.txt',
      path_lower: '/docs/new.txt',
      path_display: '/Docs/New.txt',
      id: expect.stringMatching(/^id:[A-Za-z0-9_-]{22}$/),
      client_modified: '2020-01-02T03:04:05Z',
      server_modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      rev: expect.stringMatching(/^[0-9a-f]{9,}$/),
      size: 5,
      is_downloadable: true,
      content_hash: contentHashOf(Buffer.from('hello')),
    });
    const onDisk = await stat(join(test.dataDir, 'Docs', 'New.txt'));
    expect(onDisk.mtime.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    const listed = (await test.rpc('files/list_folder', { path: '', recursive: true })).json() as { entries: Json[] };
    expect(listed.entries.map((entry) => entry.path_display)).toEqual(['/Docs', '/Docs/New.txt']);
    expect(await readdir(test.dataDir)).toEqual(['Docs']);
  });

  it('autorenames in add mode and keeps ids on overwrite', async () => {
    const first = await upload({ path: '/a.txt' }, 'one');
    const conflict = await uploadError({ path: '/a.txt', mode: 'add' }, 'two');
    expect(conflict.error).toEqual({
      '.tag': 'path',
      reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } },
      upload_session_id: expect.any(String),
    });
    expect(conflict.error_summary).toMatch(/^path\/conflict\/file\/\.{0,3}$/);
    const renamed = await upload({ path: '/a.txt', autorename: true }, 'two');
    expect(renamed.name).toBe('a (2).txt');
    const again = await upload({ path: '/a.txt', autorename: true }, 'three');
    expect(again.name).toBe('a (3).txt');
    const overwritten = await upload({ path: '/A.TXT', mode: { '.tag': 'overwrite' } }, 'four');
    expect(overwritten.id).toBe(first.id);
    expect(overwritten.rev).not.toBe(first.rev);
    expect(overwritten.path_display).toBe('/a.txt');
  });

  it('leaves identical content alone without a new rev', async () => {
    const first = await upload({ path: '/same.txt' }, 'same');
    const second = await upload({ path: '/same.txt', mode: 'add' }, 'same');
    expect(second.rev).toBe(first.rev);
    const strict = await uploadError({ path: '/same.txt', mode: 'add', strict_conflict: true }, 'same');
    expect(strict.error_summary).toMatch(/^path\/conflict\/file\//);
  });

  it('applies update mode by rev', async () => {
    const first = await upload({ path: '/u.txt' }, 'v1');
    const second = await upload({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev } }, 'v2');
    expect(second.id).toBe(first.id);
    const stale = await uploadError({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev } }, 'v3');
    expect(stale.error_summary).toMatch(/^path\/conflict\/file\//);
    const copy = await upload({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev }, autorename: true }, 'v3');
    expect(copy.name).toBe('u (conflicted copy).txt');
    const bare = await test.upload('files/upload', { path: '/u.txt', mode: 'update' }, 'x');
    expect(bare.status).toBe(400);
    expect(bare.text).toContain("mode: expected object for 'update', got symbol");
  });

  it('rejects conflicts with folders and file ancestors', async () => {
    await mkdir(join(test.dataDir, 'dir'));
    await writeFile(join(test.dataDir, 'file'), 'f');
    const folder = await uploadError({ path: '/dir' }, 'x');
    expect(folder.error).toMatchObject({ reason: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } });
    const ancestor = await uploadError({ path: '/file/inner.txt' }, 'x');
    expect(ancestor.error).toMatchObject({ reason: { '.tag': 'conflict', conflict: { '.tag': 'file_ancestor' } } });
  });

  it('rejects names Dropbox does not store', async () => {
    const cases: Array<[string, string]> = [
      ['/desktop.ini', 'disallowed_name'],
      ['/.DS_Store', 'disallowed_name'],
      ['/bad\u007fname', 'malformed_path'],
      ['/back\\slash', 'malformed_path'],
      [`/${'n'.repeat(256)}`, 'malformed_path'],
    ];
    for (const [path, tag] of cases) {
      const error = await uploadError({ path }, 'x');
      expect(error.error, path).toMatchObject({ '.tag': 'path', reason: { '.tag': tag } });
    }
    const longest = await upload({ path: `/${'n'.repeat(255)}` }, 'x');
    expect(longest.size).toBe(1);
    const trailingSpace = await test.upload('files/upload', { path: '/space ' }, 'x');
    expect(trailingSpace.status).toBe(409);
  });

  it('checks content_hash and the quota', async () => {
    const mismatch = await uploadError({ path: '/h.txt', content_hash: contentHashOf(Buffer.from('other')) }, 'data');
    expect(mismatch.error).toEqual({ '.tag': 'content_hash_mismatch' });
    const matching = await upload({ path: '/h.txt', content_hash: contentHashOf(Buffer.from('data')) }, 'data');
    expect(matching.size).toBe(4);
    const tooBig = await uploadError({ path: '/big.bin' }, Buffer.alloc(1_000_001));
    expect(tooBig.error).toEqual({
      '.tag': 'path',
      reason: { '.tag': 'insufficient_space' },
      upload_session_id: expect.any(String),
    });
    const usage = (await test.rpc('users/get_space_usage', undefined)).json() as Json;
    expect(usage).toEqual({ used: 4, allocation: { '.tag': 'individual', allocated: 1_000_000 } });
  });

  it('rejects bodies over 150 MiB with payload_too_large', async () => {
    await test.close();
    test = await startTestEmulator();
    const error = await uploadError({ path: '/huge.bin' }, Buffer.alloc(150 * 1024 * 1024 + 1));
    expect(error.error).toEqual({ '.tag': 'payload_too_large' });
    expect(await readdir(test.dataDir)).toEqual([]);
  }, 60_000);
});

describe('emulator upload sessions', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function start(body: string, close = false): Promise<string> {
    const reply = await test.upload('files/upload_session/start', { close }, body);
    expect(reply.status, reply.text).toBe(200);
    return (reply.json() as { session_id: string }).session_id;
  }

  it('appends, checks offsets and finishes', async () => {
    const sessionId = await start('abc');
    const append = await test.upload('files/upload_session/append_v2', { cursor: { session_id: sessionId, offset: 3 } }, 'def');
    expect(append.status, append.text).toBe(200);
    expect(append.text).toBe('null');
    const wrong = await test.upload('files/upload_session/append_v2', { cursor: { session_id: sessionId, offset: 2 } }, 'x');
    expect(wrong.status).toBe(409);
    expect(wrong.json()).toMatchObject({ error: { '.tag': 'incorrect_offset', correct_offset: 6 } });
    expect((wrong.json() as Json).error_summary).toMatch(/^incorrect_offset\/\.{0,3}$/);
    const badFinish = await test.upload('files/upload_session/finish', {
      cursor: { session_id: sessionId, offset: 5 },
      commit: { path: '/s.txt' },
    }, 'ghi');
    expect(badFinish.status).toBe(409);
    expect(badFinish.json()).toMatchObject({
      error: { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 6 } },
    });
    const finish = await test.upload('files/upload_session/finish', {
      cursor: { session_id: sessionId, offset: 6 },
      commit: { path: '/s.txt', mode: 'add' },
    }, 'ghi');
    expect(finish.status, finish.text).toBe(200);
    expect(finish.json()).toMatchObject({ name: 's.txt', size: 9, content_hash: contentHashOf(Buffer.from('abcdefghi')) });
    expect(finish.json()).not.toHaveProperty('.tag');
    const gone = await test.upload('files/upload_session/append_v2', { cursor: { session_id: sessionId, offset: 9 } }, '');
    expect(gone.json()).toMatchObject({ error: { '.tag': 'not_found' } });
  });

  it('rejects appends to a closed session', async () => {
    const sessionId = await start('abc', true);
    const closed = await test.upload('files/upload_session/append_v2', { cursor: { session_id: sessionId, offset: 3 } }, 'd');
    expect(closed.status).toBe(409);
    expect(closed.json()).toMatchObject({ error: { '.tag': 'closed' } });
  });

  it('nests a path conflict under path on finish', async () => {
    await writeFile(join(test.dataDir, 'taken.txt'), 'old');
    const sessionId = await start('new');
    const finish = await test.upload('files/upload_session/finish', {
      cursor: { session_id: sessionId, offset: 3 },
      commit: { path: '/taken.txt' },
    }, '');
    expect(finish.status).toBe(409);
    expect(finish.json()).toMatchObject({
      error: { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file' } } },
    });
    const missing = await test.upload('files/upload_session/finish', {
      cursor: { session_id: 'pid_upload_session:nope', offset: 0 },
      commit: { path: '/x.txt' },
    }, '');
    expect(missing.json()).toMatchObject({ error: { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } } });
  });
});
