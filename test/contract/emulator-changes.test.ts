import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;
interface Page {
  entries: Json[];
  cursor: string;
  has_more: boolean;
}

describe('emulator change journal and cursors', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator({ longpollMaxWaitMs: 3000 });
  });

  afterEach(async () => {
    await test.close();
  });

  async function rpc(route: string, arg: Json): Promise<Json> {
    const reply = await test.rpc(route, arg);
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  async function latest(arg: Json = { path: '', recursive: true }): Promise<string> {
    const result = await rpc('files/list_folder/get_latest_cursor', arg);
    expect(Object.keys(result)).toEqual(['cursor']);
    return result.cursor as string;
  }

  async function changes(cursor: string): Promise<Page> {
    return (await rpc('files/list_folder/continue', { cursor })) as unknown as Page;
  }

  function summary(entries: Json[]): string[] {
    return entries.map((entry) => `${entry['.tag'] as string} ${entry.path_display as string}`);
  }

  function control(action: string, body: Json) {
    return test.send(`/_emulator/files/${action}`, { method: 'POST', body: JSON.stringify(body) });
  }

  it('replays add, modify, move and delete made through the API', async () => {
    const cursor = await latest();
    const added = (await test.upload('files/upload', { path: '/a.txt' }, 'one')).json() as Json;
    await test.upload('files/upload', { path: '/a.txt', mode: 'overwrite' }, 'two');
    await rpc('files/create_folder_v2', { path: '/Dir' });
    await rpc('files/move_v2', { from_path: '/a.txt', to_path: '/Dir/b.txt' });
    await rpc('files/delete_v2', { path: '/Dir' });
    const page = await changes(cursor);
    expect(summary(page.entries)).toEqual([
      'file /a.txt',
      'file /a.txt',
      'folder /Dir',
      'deleted /a.txt',
      'file /Dir/b.txt',
      'deleted /Dir',
    ]);
    expect(page.entries[0]?.id).toBe(added.id);
    expect(page.entries[3]).toEqual({ '.tag': 'deleted', name: 'a.txt', path_lower: '/a.txt', path_display: '/a.txt' });
    expect(page.has_more).toBe(false);
    const empty = await changes(page.cursor);
    expect(empty.entries).toEqual([]);
  });

  it('replays changes made with the control endpoints', async () => {
    const cursor = await latest();
    expect((await control('mkdir', { path: '/Box' })).status).toBe(200);
    const written = await control('write', { path: '/Box/n.txt', content_base64: Buffer.from('hi').toString('base64') });
    expect(written.status, written.text).toBe(200);
    const id = ((written.json() as Json).metadata as Json).id;
    expect((await control('move', { from: '/Box/n.txt', to: '/m.txt' })).status).toBe(200);
    expect((await control('delete', { path: '/Box' })).status).toBe(200);
    const page = await changes(cursor);
    // The addition of /Box/n.txt is superseded by its move, so the journal may leave it out.
    const seen = summary(page.entries).filter((change) => change !== 'file /Box/n.txt');
    expect(seen).toEqual(['folder /Box', 'deleted /Box/n.txt', 'file /m.txt', 'deleted /Box']);
    expect(page.entries.find((entry) => entry.path_display === '/m.txt')?.id).toBe(id);
  });

  it('replays changes made directly in the data folder', async () => {
    await writeFile(join(test.dataDir, 'keep.txt'), 'k');
    await writeFile(join(test.dataDir, 'old.txt'), 'o');
    const cursor = await latest();
    await test.emulator.rescan();
    const before = (await changes(cursor)).cursor;
    await writeFile(join(test.dataDir, 'keep.txt'), 'changed');
    await rename(join(test.dataDir, 'old.txt'), join(test.dataDir, 'new.txt'));
    await mkdir(join(test.dataDir, 'D'));
    await writeFile(join(test.dataDir, 'D', 'inside.txt'), 'i');
    await rm(join(test.dataDir, 'D', 'inside.txt'));
    await test.emulator.rescan();
    const page = await changes(before);
    expect(summary(page.entries).sort()).toEqual(['deleted /old.txt', 'file /keep.txt', 'file /new.txt', 'folder /D']);
    const keep = page.entries.find((entry) => entry.name === 'keep.txt');
    expect(keep?.size).toBe(7);
  });

  it('limits changes to the cursor folder and pages them', async () => {
    await mkdir(join(test.dataDir, 'In', 'Deep'), { recursive: true });
    const shallow = await latest({ path: '/In' });
    const deep = await latest({ path: '/in', recursive: true, limit: 2 });
    for (const name of ['x', 'y', 'z']) {
      await test.upload('files/upload', { path: `/In/${name}` }, name);
    }
    await test.upload('files/upload', { path: '/In/Deep/w' }, 'w');
    await test.upload('files/upload', { path: '/Out' }, 'o');
    expect(summary((await changes(shallow)).entries)).toEqual(['file /In/x', 'file /In/y', 'file /In/z']);
    const first = await changes(deep);
    expect(first.entries).toHaveLength(2);
    expect(first.has_more).toBe(true);
    const second = await changes(first.cursor);
    expect(summary(second.entries)).toEqual(['file /In/z', 'file /In/Deep/w']);
    expect(second.has_more).toBe(false);
  });

  it('lists deletions with include_deleted', async () => {
    await test.upload('files/upload', { path: '/Gone/x.txt' }, 'x');
    await rpc('files/delete_v2', { path: '/Gone/x.txt' });
    const plain = await rpc('files/list_folder', { path: '/gone' });
    expect(plain.entries).toEqual([]);
    const withDeleted = await rpc('files/list_folder', { path: '/gone', include_deleted: true });
    expect(withDeleted.entries).toEqual([
      { '.tag': 'deleted', name: 'x.txt', path_lower: '/gone/x.txt', path_display: '/Gone/x.txt' },
    ]);
  });

  it('answers reset after invalidateCursors and a restart', async () => {
    const cursor = await latest();
    test.emulator.invalidateCursors();
    const reset = await test.rpc('files/list_folder/continue', { cursor });
    expect(reset.status).toBe(409);
    expect((reset.json() as Json).error).toEqual({ '.tag': 'reset' });
    const fresh = await latest();
    await test.restart();
    const afterRestart = await test.rpc('files/list_folder/continue', { cursor: fresh });
    expect((afterRestart.json() as Json).error).toEqual({ '.tag': 'reset' });
    const poll = await test.send('/2/files/list_folder/longpoll', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cursor: fresh }),
    });
    expect(poll.status).toBe(409);
  });
});

describe('emulator files/list_folder/longpoll', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator({ longpollMaxWaitMs: 5000 });
  });

  afterEach(async () => {
    await test.close();
  });

  function longpoll(arg: Json, headers: Record<string, string> = {}) {
    return test.send('/2/files/list_folder/longpoll', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(arg),
    });
  }

  async function cursorOf(path: string): Promise<string> {
    const reply = await test.rpc('files/list_folder/get_latest_cursor', { path, recursive: true });
    return (reply.json() as { cursor: string }).cursor;
  }

  it('wakes within a second of a change in the data folder', async () => {
    await mkdir(join(test.dataDir, 'Watched'));
    const cursor = await cursorOf('/watched');
    const started = performance.now();
    const pending = longpoll({ cursor, timeout: 30 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const changedAt = performance.now();
    await writeFile(join(test.dataDir, 'Watched', 'new.txt'), 'n');
    const reply = await pending;
    const wokeAfterMs = performance.now() - changedAt;
    expect(reply.status, reply.text).toBe(200);
    expect(reply.json()).toEqual({ changes: true });
    expect(performance.now() - started).toBeGreaterThan(250);
    expect(wokeAfterMs).toBeLessThan(1000);
  });

  it('ignores changes outside the cursor folder and times out', async () => {
    await mkdir(join(test.dataDir, 'Quiet'));
    await test.close();
    test = await startTestEmulator({ longpollMaxWaitMs: 400 });
    await mkdir(join(test.dataDir, 'Quiet'));
    const cursor = await cursorOf('/quiet');
    const pending = longpoll({ cursor });
    await test.upload('files/upload', { path: '/elsewhere.txt' }, 'e');
    const reply = await pending;
    expect(reply.json()).toEqual({ changes: false });
  });

  it('answers at once when changes are pending', async () => {
    const cursor = await cursorOf('');
    await test.upload('files/upload', { path: '/p.txt' }, 'p');
    const reply = await longpoll({ cursor, timeout: 480 });
    expect(reply.json()).toEqual({ changes: true });
  });

  it('rejects Authorization and timeouts out of range', async () => {
    const cursor = await cursorOf('');
    const authorized = await longpoll({ cursor }, { Authorization: `Bearer ${test.accessToken}` });
    expect(authorized.status).toBe(400);
    expect(authorized.text).toBe(
      'Error in call to API function "files/list_folder/longpoll": Your request includes an Authorization header, but this function does not use it.',
    );
    for (const timeout of [29, 481]) {
      const reply = await longpoll({ cursor, timeout });
      expect(reply.status).toBe(400);
      expect(reply.text).toContain(`timeout: ${timeout} is not within range [30, 480]`);
    }
    const garbage = await longpoll({ cursor: 'nope' });
    expect(garbage.status).toBe(400);
  });
});
