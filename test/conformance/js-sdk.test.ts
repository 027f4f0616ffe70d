// The official Dropbox JS SDK (npm `dropbox`, the version in package.json) run against the
// emulator through one scripted scenario. Steps share state and run in order, and a failing
// step names the route that does not behave as the SDK expects.

import { createHash } from 'node:crypto';
import { Dropbox, DropboxAuth, DropboxResponseError } from 'dropbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';
import { loopbackFetch, type LoopbackFetch } from './loopback-fetch.js';

const HELLO_HASH = '9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50';

/** Runs `call` and returns the DropboxResponseError it must throw. */
async function sdkError(call: () => Promise<unknown>): Promise<DropboxResponseError<{ error: Record<string, unknown> }>> {
  const outcome = await call().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(DropboxResponseError);
  return outcome as DropboxResponseError<{ error: Record<string, unknown> }>;
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('official JS SDK against the emulator', () => {
  let test: TestEmulator;
  let loopback: LoopbackFetch;
  let auth: DropboxAuth;
  let dbx: Dropbox;
  let fileId = '';
  let fileRev = '';

  beforeAll(async () => {
    test = await startTestEmulator();
    loopback = loopbackFetch(test.emulator.url);
    auth = new DropboxAuth({
      refreshToken: test.emulator.refreshToken,
      clientId: test.emulator.appKey,
      clientSecret: test.emulator.appSecret,
      fetch: loopback.fetch,
    });
    dbx = new Dropbox({ auth, fetch: loopback.fetch });
    test.emulator.clearCalls();
  });

  afterAll(async () => {
    await test.close();
  });

  it('refreshes the token on first use', async () => {
    const account = await dbx.usersGetCurrentAccount();
    expect(account.status).toBe(200);
    expect(account.result.account_id).toMatch(/^dbid:/);
    expect(test.emulator.calls()[0]).toMatchObject({ route: 'oauth2/token', status: 200 });
  });

  it('creates a folder', async () => {
    const created = await dbx.filesCreateFolderV2({ path: '/Conf' });
    expect(created.result.metadata.name).toBe('Conf');
    expect(created.result.metadata.path_lower).toBe('/conf');
  });

  it('uploads in one call', async () => {
    const uploaded = await dbx.filesUpload({ path: '/Conf/hello.txt', contents: Buffer.from('hello') });
    expect(uploaded.result.size).toBe(5);
    expect(uploaded.result.content_hash).toBe(HELLO_HASH);
    fileId = uploaded.result.id;
    fileRev = uploaded.result.rev;
  });

  it('uploads by session', async () => {
    const first = Buffer.alloc(1000, 1);
    const second = Buffer.alloc(500, 2);
    const started = await dbx.filesUploadSessionStart({ contents: first });
    const sessionId = started.result.session_id;
    await dbx.filesUploadSessionAppendV2({ cursor: { session_id: sessionId, offset: 1000 }, contents: second });
    const finished = await dbx.filesUploadSessionFinish({
      cursor: { session_id: sessionId, offset: 1500 },
      commit: { path: '/Conf/session.bin', mode: { '.tag': 'add' } },
      contents: Buffer.alloc(0),
    });
    expect(finished.result.size).toBe(1500);
    const whole = Buffer.concat([first, second]);
    const expectedHash = sha256Hex(Buffer.from(sha256Hex(whole), 'hex'));
    expect(finished.result.content_hash).toBe(expectedHash);
  });

  it('reports incorrect_offset with the correct offset', async () => {
    const started = await dbx.filesUploadSessionStart({ contents: Buffer.alloc(10) });
    const error = await sdkError(() =>
      dbx.filesUploadSessionAppendV2({
        cursor: { session_id: started.result.session_id, offset: 3 },
        contents: Buffer.alloc(10),
      }),
    );
    expect(error.status).toBe(409);
    expect(error.error.error).toEqual({ '.tag': 'incorrect_offset', correct_offset: 10 });
  });

  it('lists with a limit and paginates', async () => {
    for (const name of ['a', 'b', 'c', 'd']) {
      await dbx.filesUpload({ path: `/Conf/page-${name}.txt`, contents: Buffer.from(name) });
    }
    let page = await dbx.filesListFolder({ path: '/conf', limit: 2 });
    expect(page.result.entries.length).toBeLessThanOrEqual(2);
    expect(page.result.has_more).toBe(true);
    const names = page.result.entries.map((entry) => entry.name);
    while (page.result.has_more) {
      page = await dbx.filesListFolderContinue({ cursor: page.result.cursor });
      names.push(...page.result.entries.map((entry) => entry.name));
    }
    expect(names.sort()).toEqual(['hello.txt', 'page-a.txt', 'page-b.txt', 'page-c.txt', 'page-d.txt', 'session.bin']);
  });

  it('gets metadata by path, id and rev', async () => {
    const byPath = await dbx.filesGetMetadata({ path: '/CONF/Hello.txt' });
    expect(byPath.result['.tag']).toBe('file');
    expect(byPath.result.path_display).toBe('/Conf/hello.txt');
    const byId = await dbx.filesGetMetadata({ path: fileId });
    expect(byId.result.path_lower).toBe('/conf/hello.txt');
    const byRev = await dbx.filesGetMetadata({ path: `rev:${fileRev}` });
    expect(byRev.result.path_lower).toBe('/conf/hello.txt');
  });

  it('downloads a byte range', async () => {
    const ranged = new Dropbox({ auth, customHeaders: { Range: 'bytes=1-3' }, fetch: loopback.fetch });
    const reply = await ranged.filesDownload({ path: '/Conf/hello.txt' });
    expect(reply.status).toBe(206);
    expect(reply.headers.get('content-range')).toBe('bytes 1-3/5');
    const result = reply.result as typeof reply.result & { fileBinary: Buffer };
    expect(result.fileBinary.toString()).toBe('ell');
    expect(result.size).toBe(5);
    expect(test.emulator.calls().at(-1)).toMatchObject({ route: 'files/download', range: 'bytes=1-3', bytes: 3 });
  });

  it('moves, copies and deletes', async () => {
    const moved = await dbx.filesMoveV2({ from_path: '/Conf/page-a.txt', to_path: '/Conf/moved.txt' });
    expect(moved.result.metadata.path_lower).toBe('/conf/moved.txt');
    const copied = await dbx.filesCopyV2({ from_path: '/Conf/moved.txt', to_path: '/Conf/copied.txt' });
    expect(copied.result.metadata.path_lower).toBe('/conf/copied.txt');
    const deleted = await dbx.filesDeleteV2({ path: '/Conf/moved.txt' });
    expect(deleted.result.metadata.path_lower).toBe('/conf/moved.txt');
    const deletedError = await sdkError(() => dbx.filesGetMetadata({ path: '/Conf/moved.txt' }));
    expect(deletedError.status).toBe(409);
  });

  it('longpoll sees a change and continue returns it', async () => {
    const latest = await dbx.filesListFolderGetLatestCursor({ path: '/Conf' });
    const started = performance.now();
    const poll = dbx.filesListFolderLongpoll({ cursor: latest.result.cursor, timeout: 30 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await dbx.filesUpload({ path: '/Conf/new.txt', contents: Buffer.from('new') });
    const polled = await poll;
    expect(polled.result.changes).toBe(true);
    expect(performance.now() - started).toBeLessThan(5000);
    const changes = await dbx.filesListFolderContinue({ cursor: latest.result.cursor });
    expect(changes.result.entries.map((entry) => entry.name)).toContain('new.txt');
  });

  it('not_found and conflict carry their tags', async () => {
    const missing = await sdkError(() => dbx.filesGetMetadata({ path: '/Conf/missing.txt' }));
    expect(missing.status).toBe(409);
    expect(missing.error.error).toEqual({ '.tag': 'path', path: { '.tag': 'not_found' } });
    const conflict = await sdkError(() => dbx.filesCreateFolderV2({ path: '/conf' }));
    expect(conflict.status).toBe(409);
    expect(conflict.error.error).toEqual({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } });
  });

  it('sent every request to the emulator', () => {
    expect(loopback.requested.length).toBeGreaterThan(10);
    for (const url of loopback.requested) {
      expect(url).toMatch(/^https:\/\/(api|content|notify)\.dropboxapi\.com\//);
    }
    expect(test.emulator.calls().length).toBe(loopback.requested.length);
  });
});
