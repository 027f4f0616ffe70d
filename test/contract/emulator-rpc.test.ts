import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeDaemonConfig } from '../../src/emulator/index.js';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

describe('emulator RPC conventions and users routes', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator({ quotaBytes: 5_000_000 });
  });

  afterEach(async () => {
    await test.close();
  });

  function post(route: string, body: string | undefined, contentType?: string) {
    const headers: Record<string, string> = { Authorization: `Bearer ${test.accessToken}` };
    if (contentType !== undefined) {
      headers['Content-Type'] = contentType;
    }
    return test.send(`/2/${route}`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
  }

  it('reports space used by files', async () => {
    await mkdir(join(test.dataDir, 'sub'));
    await writeFile(join(test.dataDir, 'a'), Buffer.alloc(1000));
    await writeFile(join(test.dataDir, 'sub', 'b'), Buffer.alloc(234));
    const reply = await test.rpc('users/get_space_usage', undefined);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.json()).toEqual({ used: 1234, allocation: { '.tag': 'individual', allocated: 5_000_000 } });
  });

  it('returns a FullAccount', async () => {
    const reply = await test.rpc('users/get_current_account', undefined);
    expect(reply.status).toBe(200);
    const account = reply.json() as Record<string, unknown>;
    expect(account.account_id).toMatch(/^dbid:/);
    expect((account.account_id as string).length).toBe(40);
    expect(account.name).toEqual({
      given_name: expect.any(String),
      surname: expect.any(String),
      familiar_name: expect.any(String),
      display_name: expect.any(String),
      abbreviated_name: expect.any(String),
    });
    expect(account.account_type).toEqual({ '.tag': 'basic' });
    expect(account.root_info).toEqual({
      '.tag': 'user',
      root_namespace_id: expect.stringMatching(/^\d+$/),
      home_namespace_id: expect.stringMatching(/^\d+$/),
    });
    for (const field of ['email', 'email_verified', 'disabled', 'locale', 'referral_link', 'is_paired']) {
      expect(account, field).toHaveProperty(field);
    }
  });

  it('accepts Void arguments as no body or null', async () => {
    expect((await post('users/get_space_usage', undefined)).status).toBe(200);
    expect((await post('users/get_space_usage', 'null', 'application/json')).status).toBe(200);
    expect((await post('users/get_space_usage', 'null', 'application/json; charset=utf-8')).status).toBe(200);
    const object = await post('users/get_space_usage', '{}', 'application/json');
    expect(object.status).toBe(400);
    expect(object.text).toBe('Error in call to API function "users/get_space_usage": request body: expected null, got object');
  });

  it('rejects other Content-Types with Dropbox wording', async () => {
    const reply = await post('files/list_folder', 'path=', 'application/x-www-form-urlencoded');
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(reply.text).toBe(
      'Error in call to API function "files/list_folder": Bad HTTP "Content-Type" header: "application/x-www-form-urlencoded".  ' +
        'Expecting one of "application/json", "application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack".',
    );
    const missing = await post('files/list_folder', '{"path":""}');
    expect(missing.status).toBe(400);
    const corsHack = await post('files/list_folder', '{"path":""}', 'text/plain; charset=dropbox-cors-hack');
    expect(corsHack.status).toBe(200);
  });

  it('rejects a body that is not JSON', async () => {
    const reply = await post('files/list_folder', '{path:', 'application/json');
    expect(reply.status).toBe(400);
    expect(reply.text).toBe('Error in call to API function "files/list_folder": request body: could not decode input as JSON');
  });

  it('rejects unknown routes with 400', async () => {
    const reply = await post('files/list_folderz', '{}', 'application/json');
    expect(reply.status).toBe(400);
    expect(reply.text).toBe('Error in call to API function "files/list_folderz": Unknown API function: /2/files/list_folderz');
    const outside = await test.send('/3/files/list_folder');
    expect(outside.status).toBe(404);
  });

  it('rejects GET on RPC routes with 405', async () => {
    const reply = await test.send('/2/files/list_folder', { headers: { Authorization: `Bearer ${test.accessToken}` } });
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('POST');
  });

  it('sets X-Dropbox-Request-Id on every response', async () => {
    const ok = await test.rpc('users/get_space_usage', undefined);
    const failed = await test.rpc('files/get_metadata', { path: '/none' });
    expect(ok.headers['x-dropbox-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(failed.headers['x-dropbox-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('records calls with route, arg, range, status and bytes', async () => {
    await writeFile(join(test.dataDir, 'f.txt'), 'hello');
    test.emulator.clearCalls();
    await test.rpc('files/list_folder', { path: '' });
    await test.rpc('files/get_metadata', { path: '/missing' });
    const download = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': '{"path":"/f.txt"}', Range: 'bytes=1-3' },
    });
    expect(download.text).toBe('ell');
    const calls = test.emulator.calls();
    expect(calls.map((call) => call.route)).toEqual(['files/list_folder', 'files/get_metadata', 'files/download']);
    expect(calls[0]?.arg).toEqual({ path: '' });
    expect(calls[0]?.status).toBe(200);
    expect(calls[0]?.range).toBeUndefined();
    expect(calls[1]?.status).toBe(409);
    expect(calls[2]).toMatchObject({ arg: { path: '/f.txt' }, range: 'bytes=1-3', status: 206, bytes: 3 });
    for (const call of calls) {
      expect(call.ms).toBeGreaterThanOrEqual(0);
      expect(call.bytes).toBeGreaterThan(0);
    }
    expect(JSON.stringify(calls)).not.toContain(test.accessToken);
  });

  it('serves the call log on the control endpoint without logging itself', async () => {
    test.emulator.clearCalls();
    await test.rpc('users/get_space_usage', undefined);
    const first = await test.send('/_emulator/calls');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json');
    expect((first.json() as Array<{ route: string }>).map((call) => call.route)).toEqual(['users/get_space_usage']);
    const cleared = await test.send('/_emulator/calls', { method: 'DELETE' });
    expect(cleared.status).toBe(204);
    const after = await test.send('/_emulator/calls');
    expect(after.json()).toEqual([]);
    expect(test.emulator.calls()).toEqual([]);
    expect((await test.send('/_emulator/other')).status).toBe(404);
  });

  it('returns a copy of the call log', async () => {
    await test.rpc('users/get_space_usage', undefined);
    const calls = test.emulator.calls();
    calls.length = 0;
    expect(test.emulator.calls().length).toBeGreaterThan(0);
  });

  it('writes the daemon config with mode 0600', async () => {
    const file = join(test.dataDir, 'config', 'nested', 'config.json');
    await writeDaemonConfig(test.emulator, file, '/Mounted');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({
      appKey: test.emulator.appKey,
      appSecret: test.emulator.appSecret,
      refreshToken: test.emulator.refreshToken,
      root: '/Mounted',
      apiUrl: test.emulator.url,
      contentUrl: test.emulator.url,
      notifyUrl: test.emulator.url,
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeDaemonConfig(test.emulator, file);
    expect((JSON.parse(await readFile(file, 'utf8')) as { root: string }).root).toBe('');
  });

  it('exposes its address and credentials', () => {
    expect(test.emulator.url).toBe(`http://127.0.0.1:${test.emulator.port}`);
    expect(test.emulator.appKey).toBe('emulator-app-key');
    expect(test.emulator.appSecret.length).toBeGreaterThan(8);
    expect(test.emulator.refreshToken.length).toBeGreaterThan(20);
  });
});
