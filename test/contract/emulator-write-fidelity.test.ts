import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contentHashOf } from '../../src/dropbox/content-hash.js';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { parseFaultRule } from '../../src/emulator/faults.js';
import { startTestEmulator, type HttpReply, type TestEmulator } from '../../src/emulator/testing.js';
import type { CallRecord, FaultRule } from '../../src/emulator/types.js';

type Json = Record<string, unknown>;

const APPEND = 'files/upload_session/append_v2';
const FINISH = 'files/upload_session/finish';

describe('emulator write routes', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
    test.emulator.clearCalls();
  });

  afterEach(async () => {
    await test.close();
  });

  async function upload(arg: Json, body: string | Buffer): Promise<Json> {
    const reply = await test.upload('files/upload', arg, body);
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  async function failed(reply: Promise<HttpReply>, status = 409): Promise<Json> {
    const answered = await reply;
    expect(answered.status, answered.text).toBe(status);
    return answered.json() as Json;
  }

  async function rpc(route: string, arg: Json): Promise<Json> {
    const reply = await test.rpc(route, arg);
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  async function control(path: string, body: unknown): Promise<HttpReply> {
    return test.send(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async function addFault(rule: FaultRule): Promise<void> {
    const reply = await control('/_emulator/faults', rule);
    expect(reply.status, reply.text).toBe(200);
  }

  async function startSession(body: string): Promise<string> {
    const reply = await test.upload('files/upload_session/start', {}, body);
    expect(reply.status, reply.text).toBe(200);
    return (reply.json() as { session_id: string }).session_id;
  }

  async function download(path: string): Promise<string> {
    const reply = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson({ path }) },
    });
    expect(reply.status, reply.text).toBe(200);
    return reply.text;
  }

  /** Waits for the call log to hold `count` calls; a cut connection is logged on its close. */
  async function callsWhenLogged(count: number): Promise<CallRecord[]> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const calls = test.emulator.calls();
      if (calls.length >= count) {
        return calls;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return test.emulator.calls();
  }

  it('leaves identical content alone in every mode', async () => {
    const first = await upload({ path: '/same.txt', client_modified: '2020-01-01T00:00:00Z' }, 'same');
    const modes = ['add', 'overwrite', { '.tag': 'update', update: first.rev }, { '.tag': 'update', update: '0123456789' }];
    for (const mode of modes) {
      const again = await upload({ path: '/same.txt', mode, client_modified: '2021-06-01T00:00:00Z' }, 'same');
      expect(again.rev, JSON.stringify(mode)).toBe(first.rev);
      expect(again.client_modified, JSON.stringify(mode)).toBe('2020-01-01T00:00:00Z');
    }
    const strictMatch = await upload({ path: '/same.txt', mode: { '.tag': 'update', update: first.rev }, strict_conflict: true }, 'same');
    expect(strictMatch.rev).toBe(first.rev);
    const strictStale = await failed(test.upload('files/upload', {
      path: '/same.txt',
      mode: { '.tag': 'update', update: '0123456789' },
      strict_conflict: true,
    }, 'same'));
    expect(strictStale.error_summary).toMatch(/^path\/conflict\/file\//);
  });

  it('strict update conflicts when nothing is there', async () => {
    const arg = { path: '/gone.txt', mode: { '.tag': 'update', update: '0123456789' } };
    const strict = await failed(test.upload('files/upload', { ...arg, strict_conflict: true }, 'x'));
    expect(strict.error).toMatchObject({ '.tag': 'path', reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    const renamed = await upload({ ...arg, strict_conflict: true, autorename: true }, 'x');
    expect(renamed.name).toBe('gone (conflicted copy).txt');
    const lenient = await upload(arg, 'x');
    expect(lenient.name).toBe('gone.txt');
  });

  it('gives every new content a new rev', async () => {
    const revs = new Set<string>();
    const first = await upload({ path: '/r.txt' }, 'v0');
    revs.add(first.rev as string);
    for (let version = 1; version <= 5; version++) {
      const next = await upload({ path: '/r.txt', mode: 'overwrite' }, `v${version}`);
      expect(revs.has(next.rev as string), `rev of v${version}`).toBe(false);
      revs.add(next.rev as string);
    }
    await rpc('files/delete_v2', { path: '/r.txt' });
    const recreated = await upload({ path: '/r.txt' }, 'v0');
    expect(revs.has(recreated.rev as string)).toBe(false);
  });

  it('rejects impossible client_modified times', async () => {
    for (const time of ['2021-02-29T00:00:00Z', '2020-01-01T24:00:00Z', '2020-01-01T00:00:00.5Z', '2020-01-01 00:00:00Z']) {
      const reply = await test.upload('files/upload', { path: '/t.txt', client_modified: time }, 'x');
      expect(reply.status, time).toBe(400);
      expect(reply.text, time).toContain("does not match format '%Y-%m-%dT%H:%M:%SZ'");
    }
  });

  it('checks content_hash formats on session routes', async () => {
    const start = await test.upload('files/upload_session/start', { content_hash: 'ABC' }, 'x');
    expect(start.status).toBe(400);
    expect(start.text).toContain("content_hash: 'ABC' did not match pattern");
    const sessionId = await startSession('abc');
    const append = await test.upload(APPEND, { cursor: { session_id: sessionId, offset: 3 }, content_hash: 'x' }, 'd');
    expect(append.status).toBe(400);
    expect(append.text).toContain('Error in call to API function "files/upload_session/append:2"');
    const retry = await test.upload(APPEND, { cursor: { session_id: sessionId, offset: 3 } }, 'd');
    expect(retry.status, retry.text).toBe(200);
  });

  it('drops a cut append and resumes at correct_offset', async () => {
    const sessionId = await startSession('abc');
    await addFault({ route: APPEND, fault: 'cut-request-after', bytes: 2, times: 1 });
    await expect(test.upload(APPEND, { cursor: { session_id: sessionId, offset: 3 } }, 'defgh')).rejects.toThrow();
    const calls = await callsWhenLogged(2);
    expect(calls.map((call) => [call.route, call.status, call.fault])).toEqual([
      ['files/upload_session/start', 200, undefined],
      [APPEND, 0, 'cut-request-after'],
    ]);
    const ahead = await failed(test.upload(APPEND, { cursor: { session_id: sessionId, offset: 5 } }, 'fgh'));
    expect(ahead.error).toEqual({ '.tag': 'incorrect_offset', correct_offset: 3 });
    const retry = await test.upload(APPEND, { cursor: { session_id: sessionId, offset: 3 } }, 'defgh');
    expect(retry.status, retry.text).toBe(200);
    const finish = await test.upload(FINISH, { cursor: { session_id: sessionId, offset: 8 }, commit: { path: '/cut.txt' } }, '');
    expect(finish.status, finish.text).toBe(200);
    expect(finish.json()).toMatchObject({ size: 8, content_hash: contentHashOf(Buffer.from('abcdefgh')) });
    expect(await readFile(join(test.dataDir, 'cut.txt'), 'utf8')).toBe('abcdefgh');
  });

  it('drops a cut single-request upload', async () => {
    await addFault({ route: 'files/upload', fault: 'cut-request-after', bytes: 3, times: 1 });
    await expect(test.upload('files/upload', { path: '/cut.txt' }, 'abcdef')).rejects.toThrow();
    const calls = await callsWhenLogged(1);
    expect(calls.map((call) => [call.route, call.status, call.fault])).toEqual([['files/upload', 0, 'cut-request-after']]);
    const missing = await test.rpc('files/get_metadata', { path: '/cut.txt' });
    expect(missing.status).toBe(409);
    const uploaded = await upload({ path: '/cut.txt' }, 'abcdef');
    expect(uploaded.size).toBe(6);
  });

  it('makes an overlapping append wait for the first', async () => {
    const sessionId = await startSession('abc');
    const cursor = { session_id: sessionId, offset: 3 };
    const slow = httpRequest(`${test.emulator.url}/2/${APPEND}`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${test.accessToken}`,
        'Content-Type': 'application/octet-stream',
        'Content-Length': '2',
        'Dropbox-API-Arg': toHeaderSafeJson({ cursor }),
      },
    });
    const slowStatus = new Promise<number>((resolve, reject) => {
      slow.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      slow.on('error', reject);
    });
    slow.write('d');
    // Lets the emulator start reading the first body before the second request arrives.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const overlapping = failed(test.upload(APPEND, { cursor }, 'xy'));
    slow.end('e');
    expect(await slowStatus).toBe(200);
    // The second request waited, so it finds the bytes of the first one already there.
    expect((await overlapping).error).toEqual({ '.tag': 'incorrect_offset', correct_offset: 5 });
    const finish = await test.upload(FINISH, { cursor: { session_id: sessionId, offset: 5 }, commit: { path: '/o.txt' } }, '');
    expect(finish.status, finish.text).toBe(200);
    expect(await readFile(join(test.dataDir, 'o.txt'), 'utf8')).toBe('abcde');
  });

  it('keeps a session usable after a failed finish', async () => {
    await upload({ path: '/taken.txt' }, 'old');
    const sessionId = await startSession('abc');
    const cursor = { session_id: sessionId, offset: 3 };
    const conflict = await failed(test.upload(FINISH, { cursor, commit: { path: '/taken.txt' } }, 'def'));
    expect(conflict.error).toEqual({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    expect(conflict.error_summary).toMatch(/^path\/conflict\/file\/\.{0,3}$/);
    await addFault({ route: FINISH, fault: '503', times: 1 });
    const unavailable = await test.upload(FINISH, { cursor, commit: { path: '/new.txt' } }, 'def');
    expect(unavailable.status).toBe(503);
    await addFault({ route: FINISH, fault: '500', times: 1 });
    expect((await test.upload(FINISH, { cursor, commit: { path: '/new.txt' } }, 'def')).status).toBe(500);
    const finished = await test.upload(FINISH, { cursor, commit: { path: '/new.txt' } }, 'def');
    expect(finished.status, finished.text).toBe(200);
    expect(await readFile(join(test.dataDir, 'new.txt'), 'utf8')).toBe('abcdef');
    const routes = test.emulator.calls().map((call) => [call.route, call.status, call.fault]);
    expect(routes.filter(([route]) => route === FINISH)).toEqual([
      [FINISH, 409, undefined],
      [FINISH, 503, '503'],
      [FINISH, 500, '500'],
      [FINISH, 200, undefined],
    ]);
  });

  it('rejects data in finish of a closed session', async () => {
    const reply = await test.upload('files/upload_session/start', { close: true }, 'abc');
    const sessionId = (reply.json() as { session_id: string }).session_id;
    const cursor = { session_id: sessionId, offset: 3 };
    const closed = await failed(test.upload(FINISH, { cursor, commit: { path: '/c.txt' } }, 'more'));
    expect(closed.error).toEqual({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'closed' } });
    const finished = await test.upload(FINISH, { cursor, commit: { path: '/c.txt' } }, '');
    expect(finished.status, finished.text).toBe(200);
    expect(finished.json()).toMatchObject({ size: 3 });
  });

  it('checks parent_rev on delete', async () => {
    const file = await upload({ path: '/d.txt' }, 'x');
    const stale = await failed(test.rpc('files/delete_v2', { path: '/d.txt', parent_rev: '0123456789' }));
    expect(stale.error).toEqual({ '.tag': 'path_write', path_write: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    expect(stale.error_summary).toMatch(/^path_write\/conflict\/file\/\.{0,3}$/);
    const malformed = await test.rpc('files/delete_v2', { path: '/d.txt', parent_rev: 'xyz' });
    expect(malformed.status).toBe(400);
    expect(malformed.text).toContain('parent_rev');
    await rpc('files/create_folder_v2', { path: '/Folder/Sub' });
    const folder = await failed(test.rpc('files/delete_v2', { path: '/Folder', parent_rev: file.rev }));
    expect(folder.error).toMatchObject({ '.tag': 'path_write', path_write: { '.tag': 'conflict' } });
    const deleted = await rpc('files/delete_v2', { path: '/d.txt', parent_rev: file.rev });
    expect(deleted.metadata).toMatchObject({ '.tag': 'file', rev: file.rev });
    expect(await download(`rev:${file.rev as string}`)).toBe('x');
  });

  it('moves with case-only renames and keeps ids', async () => {
    const file = await upload({ path: '/a.txt' }, 'a');
    const renamed = await rpc('files/move_v2', { from_path: '/a.txt', to_path: '/A.txt' });
    expect(renamed.metadata).toMatchObject({ name: 'A.txt', path_display: '/A.txt', id: file.id, rev: file.rev });
    expect((renamed.metadata as Json).content_hash).toBe(file.content_hash);
    const child = await upload({ path: '/dir/in.txt' }, 'in');
    const folder = await rpc('files/move_v2', { from_path: '/dir', to_path: '/DIR' });
    expect(folder.metadata).toMatchObject({ '.tag': 'folder', name: 'DIR', path_display: '/DIR' });
    const moved = await rpc('files/get_metadata', { path: '/DIR/in.txt' });
    expect(moved).toMatchObject({ id: child.id, path_display: '/DIR/in.txt' });
    const listed = await rpc('files/list_folder', { path: '' });
    expect((listed.entries as Json[]).map((entry) => entry.name).sort()).toEqual(['A.txt', 'DIR']);
  });

  it('rejects bad moves with RelocationError', async () => {
    await upload({ path: '/one.txt' }, '1');
    await upload({ path: '/two.txt' }, '2');
    await rpc('files/create_folder_v2', { path: '/F' });
    const occupied = await failed(test.rpc('files/move_v2', { from_path: '/one.txt', to_path: '/two.txt' }));
    expect(occupied.error_summary).toMatch(/^to\/conflict\/file\/\.{0,3}$/);
    const missing = await failed(test.rpc('files/move_v2', { from_path: '/none.txt', to_path: '/x.txt' }));
    expect(missing.error_summary).toMatch(/^from_lookup\/not_found\/\.{0,3}$/);
    const into = await failed(test.rpc('files/move_v2', { from_path: '/F', to_path: '/f/inner' }));
    expect(into.error).toEqual({ '.tag': 'cant_move_folder_into_itself' });
    const disallowed = await failed(test.rpc('files/move_v2', { from_path: '/one.txt', to_path: '/Desktop.ini' }));
    expect(disallowed.error).toEqual({ '.tag': 'to', to: { '.tag': 'disallowed_name' } });
  });
});

describe('emulator write faults and account settings', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
    test.emulator.clearCalls();
  });

  afterEach(async () => {
    await test.close();
  });

  async function control(path: string, body: unknown): Promise<HttpReply> {
    return test.send(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async function addFault(rule: FaultRule): Promise<void> {
    const reply = await control('/_emulator/faults', rule);
    expect(reply.status, reply.text).toBe(200);
  }

  it('429 too_many_write_operations on upload', async () => {
    await addFault({ route: 'files/upload', fault: '429', reason: 'too_many_write_operations', retryAfterSeconds: 2, times: 1 });
    const limited = await test.upload('files/upload', { path: '/x.txt' }, 'x');
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2');
    expect(limited.json()).toMatchObject({ error: { reason: { '.tag': 'too_many_write_operations' }, retry_after: 2 } });
    expect((await test.upload('files/upload', { path: '/x.txt' }, 'x')).status).toBe(200);
    const calls = test.emulator.calls().map((call) => [call.route, call.status, call.fault]);
    expect(calls).toEqual([['files/upload', 429, '429'], ['files/upload', 200, undefined]]);
  });

  it('409 too_many_write_operations in each route shape', async () => {
    const sessionId = ((await test.upload('files/upload_session/start', {}, 'abc')).json() as Json).session_id;
    const cases: Array<[string, () => Promise<HttpReply>, unknown]> = [
      ['files/upload', () => test.upload('files/upload', { path: '/u.txt' }, 'x'), {
        '.tag': 'path',
        reason: { '.tag': 'too_many_write_operations' },
        upload_session_id: expect.any(String),
      }],
      [FINISH, () => test.upload(FINISH, { cursor: { session_id: sessionId, offset: 3 }, commit: { path: '/s.txt' } }, ''), {
        '.tag': 'too_many_write_operations',
      }],
      ['files/delete_v2', () => test.rpc('files/delete_v2', { path: '/u.txt' }), { '.tag': 'too_many_write_operations' }],
      ['files/create_folder_v2', () => test.rpc('files/create_folder_v2', { path: '/F' }), {
        '.tag': 'path',
        path: { '.tag': 'too_many_write_operations' },
      }],
    ];
    for (const [route, call, error] of cases) {
      await addFault({ route, fault: 'too-many-write-operations', times: 1 });
      const reply = await call();
      expect(reply.status, route).toBe(409);
      const body = reply.json() as Json;
      expect(body.error, route).toEqual(error);
      expect(body.error_summary, route).toMatch(/too_many_write_operations\/\.{0,3}$/);
    }
    const finished = await test.upload(FINISH, { cursor: { session_id: sessionId, offset: 3 }, commit: { path: '/s.txt' } }, '');
    expect(finished.status, finished.text).toBe(200);
    const invalid = await control('/_emulator/faults', { route: APPEND, fault: 'too-many-write-operations' });
    expect(invalid.status).toBe(400);
  });

  it('quota set through the control endpoint', async () => {
    const settings = await control('/_emulator/account', { quotaBytes: 10 });
    expect(settings.status, settings.text).toBe(200);
    expect(settings.json()).toEqual({ quotaBytes: 10, usedBytes: 0, readOnlyPaths: [] });
    const usage = (await test.rpc('users/get_space_usage', undefined)).json() as Json;
    expect(usage.allocation).toEqual({ '.tag': 'individual', allocated: 10 });
    const sessionId = ((await test.upload('files/upload_session/start', {}, '0123456789A')).json() as Json).session_id;
    const cursor = { session_id: sessionId, offset: 11 };
    const full = await test.upload(FINISH, { cursor, commit: { path: '/big.bin' } }, '');
    expect(full.status).toBe(409);
    expect(full.json()).toMatchObject({ error: { '.tag': 'path', path: { '.tag': 'insufficient_space' } } });
    test.emulator.setAccountSettings({ quotaBytes: 11 });
    expect((await test.upload(FINISH, { cursor, commit: { path: '/big.bin' } }, '')).status).toBe(200);
    const invalid = await control('/_emulator/account', { quotaBytes: -1 });
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain('quotaBytes');
  });

  it('read-only folders reject writes', async () => {
    await test.upload('files/upload', { path: '/Shared/in.txt' }, 'in');
    await test.upload('files/upload', { path: '/mine.txt' }, 'mine');
    const settings = await control('/_emulator/account', { readOnlyPaths: ['/shared'] });
    expect(settings.status, settings.text).toBe(200);
    const denied = { '.tag': 'no_write_permission' };
    const uploaded = await test.upload('files/upload', { path: '/SHARED/new.txt' }, 'x');
    expect(uploaded.json()).toMatchObject({ error: { '.tag': 'path', reason: denied } });
    const folder = await test.rpc('files/create_folder_v2', { path: '/Shared/Sub' });
    expect(folder.json()).toMatchObject({ error: { '.tag': 'path', path: denied } });
    const deleted = await test.rpc('files/delete_v2', { path: '/Shared/in.txt' });
    expect(deleted.json()).toMatchObject({ error: { '.tag': 'path_write', path_write: denied } });
    const movedOut = await test.rpc('files/move_v2', { from_path: '/Shared/in.txt', to_path: '/out.txt' });
    expect(movedOut.json()).toMatchObject({ error: { '.tag': 'from_write', from_write: denied } });
    const movedIn = await test.rpc('files/move_v2', { from_path: '/mine.txt', to_path: '/Shared/mine.txt' });
    expect(movedIn.json()).toMatchObject({ error: { '.tag': 'to', to: denied } });
    const parent = await test.rpc('files/delete_v2', { path: '/Shared' });
    expect(parent.json()).toMatchObject({ error: { '.tag': 'path_write', path_write: denied } });
    const copied = await test.rpc('files/copy_v2', { from_path: '/Shared/in.txt', to_path: '/copy.txt' });
    expect(copied.status, copied.text).toBe(200);
  });

  it('control write keeps the old rev', async () => {
    const first = await test.upload('files/upload', { path: '/c.txt' }, 'one');
    const rev = (first.json() as Json).rev as string;
    const written = await control('/_emulator/files/write', { path: '/c.txt', content_base64: Buffer.from('two').toString('base64') });
    expect(written.status, written.text).toBe(200);
    const metadata = (written.json() as { metadata: Json }).metadata;
    expect(metadata.rev).not.toBe(rev);
    const old = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson({ path: `rev:${rev}` }) },
    });
    expect(old.status, old.text).toBe(200);
    expect(old.text).toBe('one');
    const deleted = await control('/_emulator/files/delete', { path: '/c.txt' });
    expect(deleted.status, deleted.text).toBe(200);
    const last = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson({ path: `rev:${metadata.rev as string}` }) },
    });
    expect(last.text).toBe('two');
  });

  it('parses the text form of write faults', () => {
    expect(parseFaultRule(`${APPEND}:cut-request-after=1024,times=1`)).toEqual({
      route: APPEND,
      fault: 'cut-request-after',
      bytes: 1024,
      times: 1,
    });
    expect(parseFaultRule('files/upload_session/finish:too-many-write-operations')).toEqual({
      route: FINISH,
      fault: 'too-many-write-operations',
    });
    expect(() => parseFaultRule(`${APPEND}:cut-request-after`)).toThrow(/needs "bytes"/);
  });
});
