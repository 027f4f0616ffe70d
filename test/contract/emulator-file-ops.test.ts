import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;

describe('emulator folder, delete, move and copy routes', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function ok(route: string, arg: Json): Promise<Json> {
    const reply = await test.rpc(route, arg);
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  async function conflict(route: string, arg: Json): Promise<Json> {
    const reply = await test.rpc(route, arg);
    expect(reply.status, reply.text).toBe(409);
    return reply.json() as Json;
  }

  async function metadata(path: string): Promise<Json> {
    return ok('files/get_metadata', { path });
  }

  it('creates folders with FolderMetadata without .tag', async () => {
    const created = await ok('files/create_folder_v2', { path: '/A/B' });
    expect(created).toEqual({
      metadata: { name: 'B', path_lower: '/a/b', path_display: '/A/B', id: expect.stringMatching(/^id:/) },
    });
    const again = await conflict('files/create_folder_v2', { path: '/a/b' });
    expect(again.error).toEqual({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } });
    const renamed = await ok('files/create_folder_v2', { path: '/A/B', autorename: true });
    expect((renamed.metadata as Json).name).toBe('B (2)');
    const disallowed = await conflict('files/create_folder_v2', { path: '/.dropbox' });
    expect(disallowed.error).toEqual({ '.tag': 'path', path: { '.tag': 'disallowed_name' } });
  });

  it('deletes recursively and returns the metadata as before', async () => {
    await mkdir(join(test.dataDir, 'Tree', 'Sub'), { recursive: true });
    await writeFile(join(test.dataDir, 'Tree', 'Sub', 'f.txt'), 'f');
    const before = await metadata('/tree');
    const deleted = await ok('files/delete_v2', { path: '/tree' });
    expect(deleted).toEqual({ metadata: before });
    expect(before['.tag']).toBe('folder');
    expect(await readdir(test.dataDir)).toEqual([]);
    const missing = await conflict('files/delete_v2', { path: '/tree' });
    expect(missing.error).toEqual({ '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } });
    expect(missing.error_summary).toMatch(/^path_lookup\/not_found\/\.{0,3}$/);
    const deletedEntry = await ok('files/get_metadata', { path: '/Tree/Sub/f.txt', include_deleted: true });
    expect(deletedEntry).toEqual({ '.tag': 'deleted', name: 'f.txt', path_lower: '/tree/sub/f.txt', path_display: '/Tree/Sub/f.txt' });
    const withoutFlag = await test.rpc('files/get_metadata', { path: '/Tree/Sub/f.txt' });
    expect(withoutFlag.status).toBe(409);
  });

  it('moves with ids kept and rejects conflicts', async () => {
    await mkdir(join(test.dataDir, 'Src', 'Inner'), { recursive: true });
    await writeFile(join(test.dataDir, 'Src', 'Inner', 'f.txt'), 'f');
    await writeFile(join(test.dataDir, 'other.txt'), 'o');
    const folder = await metadata('/src');
    const file = await metadata('/src/inner/f.txt');
    const moved = await ok('files/move_v2', { from_path: '/Src', to_path: '/New/Dst' });
    expect(moved.metadata).toEqual({ '.tag': 'folder', name: 'Dst', path_lower: '/new/dst', path_display: '/New/Dst', id: folder.id });
    const movedFile = await metadata('/new/dst/inner/f.txt');
    expect(movedFile.id).toBe(file.id);
    expect(movedFile.rev).toBe(file.rev);
    expect((await metadata(file.id as string)).path_display).toBe('/New/Dst/Inner/f.txt');
    const into = await conflict('files/move_v2', { from_path: '/New', to_path: '/New/Dst/x' });
    expect(into.error).toEqual({ '.tag': 'cant_move_folder_into_itself' });
    const taken = await conflict('files/move_v2', { from_path: '/other.txt', to_path: '/new/dst/inner/f.txt' });
    expect(taken.error).toEqual({ '.tag': 'to', to: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    const renamed = await ok('files/move_v2', { from_path: '/other.txt', to_path: '/new/dst/inner/f.txt', autorename: true });
    expect((renamed.metadata as Json).name).toBe('f (2).txt');
    const missing = await conflict('files/move_v2', { from_path: '/nope', to_path: '/x' });
    expect(missing.error).toEqual({ '.tag': 'from_lookup', from_lookup: { '.tag': 'not_found' } });
  });

  it('copies with new ids and the same content', async () => {
    await mkdir(join(test.dataDir, 'Orig'));
    await writeFile(join(test.dataDir, 'Orig', 'a.txt'), 'aaa');
    const original = await metadata('/orig/a.txt');
    const copied = await ok('files/copy_v2', { from_path: '/Orig', to_path: '/Copy' });
    expect((copied.metadata as Json)['.tag']).toBe('folder');
    const copy = await metadata('/copy/a.txt');
    expect(copy.id).not.toBe(original.id);
    expect(copy.content_hash).toBe(original.content_hash);
    expect(copy.client_modified).toBe(original.client_modified);
    const into = await conflict('files/copy_v2', { from_path: '/Orig', to_path: '/Orig/inside' });
    expect(into.error).toEqual({ '.tag': 'cant_move_folder_into_itself' });
  });
});

describe('emulator ids and revisions', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function metadata(path: string): Promise<Json> {
    const reply = await test.rpc('files/get_metadata', { path });
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  function download(path: string) {
    return test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson({ path }) },
    });
  }

  it('keeps ids across overwrite, move and restart', async () => {
    const first = (await test.upload('files/upload', { path: '/keep.txt' }, 'v1')).json() as Json;
    const second = (await test.upload('files/upload', { path: '/keep.txt', mode: 'overwrite' }, 'v2')).json() as Json;
    expect(second.id).toBe(first.id);
    await test.rpc('files/move_v2', { from_path: '/keep.txt', to_path: '/Moved/keep.txt' });
    await test.restart();
    const afterRestart = await metadata('/moved/keep.txt');
    expect(afterRestart.id).toBe(first.id);
    expect(afterRestart.rev).toBe(second.rev);
    expect((await metadata(`${first.id as string}`)).path_display).toBe('/Moved/keep.txt');
  });

  it('serves earlier revisions through rev: paths', async () => {
    const first = (await test.upload('files/upload', { path: '/r.txt' }, 'first')).json() as Json;
    const second = (await test.upload('files/upload', { path: '/r.txt', mode: 'overwrite' }, 'second!')).json() as Json;
    expect(second.rev).not.toBe(first.rev);
    const old = await metadata(`rev:${first.rev as string}`);
    expect(old).toMatchObject({ '.tag': 'file', rev: first.rev, size: 5, id: first.id });
    const oldBytes = await download(`rev:${first.rev as string}`);
    expect(oldBytes.status).toBe(200);
    expect(oldBytes.text).toBe('first');
    const current = await download(`rev:${second.rev as string}`);
    expect(current.text).toBe('second!');
    expect(JSON.parse(current.headers['dropbox-api-result'] as string)).toMatchObject({ rev: second.rev });
  });

  it('resolves id:<id>/relative paths after a move on disk', async () => {
    await mkdir(join(test.dataDir, 'Top', 'Sub'), { recursive: true });
    await writeFile(join(test.dataDir, 'Top', 'Sub', 'f.txt'), 'f');
    const top = await metadata('/top');
    const moved = await test.send('/_emulator/files/move', { method: 'POST', body: JSON.stringify({ from: '/Top', to: '/Renamed' }) });
    expect(moved.status, moved.text).toBe(200);
    const file = await metadata(`${top.id as string}/sub/F.TXT`);
    expect(file.path_display).toBe('/Renamed/Sub/f.txt');
  });
});
