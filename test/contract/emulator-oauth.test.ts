import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { fetchAccessToken, sendRequest, type HttpReply } from '../../src/emulator/testing.js';

const CREDENTIALS = { appKey: 'key-1', appSecret: 'secret-1', refreshToken: 'refresh-1' };

describe('emulator oauth2/token and bearer checks', () => {
  let dataDir: string;
  let emulator: Emulator;
  let nowMs: number;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'emulator-oauth-'));
    nowMs = Date.parse('2025-01-01T00:00:00Z');
    emulator = await startEmulator({ dataDir, ...CREDENTIALS, accessTokenTtlSeconds: 60, now: () => nowMs });
  });

  afterEach(async () => {
    await emulator.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  function token(params: Record<string, string>, init: { path?: string; headers?: Record<string, string>; query?: boolean } = {}) {
    const form = new URLSearchParams(params).toString();
    const path = init.path ?? '/oauth2/token';
    if (init.query) {
      return sendRequest(`${emulator.url}${path}?${form}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...init.headers },
      });
    }
    return sendRequest(`${emulator.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...init.headers },
      body: form,
    });
  }

  function listRoot(accessToken: string): Promise<HttpReply> {
    return sendRequest(`${emulator.url}/2/files/list_folder`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
      body: '{"path":""}',
    });
  }

  const basic = 'Basic ' + Buffer.from('key-1:secret-1').toString('base64');

  it('issues a token from a form body', async () => {
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'refresh-1', client_id: 'key-1', client_secret: 'secret-1' });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    const body = reply.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
    expect(body.token_type).toBe('bearer');
    expect(body.expires_in).toBe(60);
    expect(typeof body.access_token).toBe('string');
  });

  it('issues a token from query parameters', async () => {
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'refresh-1', client_id: 'key-1' }, { query: true });
    expect(reply.status).toBe(200);
  });

  it('issues a token with HTTP Basic on /1/oauth2/token', async () => {
    const reply = await token(
      { grant_type: 'refresh_token', refresh_token: 'refresh-1' },
      { path: '/1/oauth2/token', headers: { Authorization: basic } },
    );
    expect(reply.status).toBe(200);
    const accessToken = (reply.json() as { access_token: string }).access_token;
    expect((await listRoot(accessToken)).status).toBe(200);
  });

  it('rejects a wrong refresh token with invalid_grant', async () => {
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'nope', client_id: 'key-1' });
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.json()).toEqual({ error: 'invalid_grant', error_description: 'refresh token is invalid or revoked' });
  });

  it('rejects a wrong secret with invalid_client', async () => {
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'refresh-1', client_id: 'key-1', client_secret: 'bad' });
    expect(reply.status).toBe(400);
    expect((reply.json() as { error: string }).error).toBe('invalid_client');
  });

  it('rejects a wrong app key with invalid_client', async () => {
    const wrongBasic = 'Basic ' + Buffer.from('other:secret-1').toString('base64');
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'refresh-1' }, { headers: { Authorization: wrongBasic } });
    expect(reply.status).toBe(400);
    expect((reply.json() as { error: string }).error).toBe('invalid_client');
  });

  it('rejects a request without a client', async () => {
    const reply = await token({ grant_type: 'refresh_token', refresh_token: 'refresh-1' });
    expect(reply.status).toBe(400);
    expect((reply.json() as { error: string }).error).toBe('invalid_request');
  });

  it('rejects other grant types', async () => {
    const code = await token({ grant_type: 'authorization_code', code: 'x', client_id: 'key-1' });
    expect((code.json() as { error: string }).error).toBe('invalid_grant');
    const other = await token({ grant_type: 'password', client_id: 'key-1' });
    expect((other.json() as { error: string }).error).toBe('unsupported_grant_type');
  });

  it('expires tokens after the TTL', async () => {
    const accessToken = await fetchAccessToken(emulator);
    nowMs += 59_000;
    expect((await listRoot(accessToken)).status).toBe(200);
    nowMs += 1_000;
    const reply = await listRoot(accessToken);
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toBe('Dropbox-API');
    expect(reply.headers['content-type']).toBe('application/json');
    const body = reply.json() as { error_summary: string; error: unknown };
    expect(body.error).toEqual({ '.tag': 'expired_access_token' });
    expect(body.error_summary).toMatch(/^expired_access_token\/\.{0,3}$/);
  });

  it('keeps tokens valid across a restart with the same credentials', async () => {
    const accessToken = await fetchAccessToken(emulator);
    await emulator.close();
    emulator = await startEmulator({ dataDir, ...CREDENTIALS, now: () => nowMs });
    expect((await listRoot(accessToken)).status).toBe(200);
    await emulator.close();
    emulator = await startEmulator({ dataDir, ...CREDENTIALS, refreshToken: 'refresh-2' });
    expect((await listRoot(accessToken)).status).toBe(401);
  });

  it('rejects an unknown token with invalid_access_token', async () => {
    const reply = await listRoot('sl.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toBe('Dropbox-API');
    expect((reply.json() as { error: unknown }).error).toEqual({ '.tag': 'invalid_access_token' });
  });

  it('rejects a malformed token with 400 text', async () => {
    const reply = await listRoot('not*a*token');
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(reply.text).toBe('Error in call to API function "files/list_folder": The given OAuth 2 access token is malformed.');
  });

  it('rejects a missing Authorization header with 400 text', async () => {
    const reply = await sendRequest(`${emulator.url}/2/files/list_folder`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"path":""}',
    });
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(reply.text).toBe(
      'Error in call to API function "files/list_folder": Must provide HTTP header "Authorization" or URL parameter "authorization".',
    );
  });

  it('rejects a non-Bearer Authorization header', async () => {
    const reply = await sendRequest(`${emulator.url}/2/files/list_folder`, {
      method: 'POST',
      headers: { Authorization: basic, 'Content-Type': 'application/json' },
      body: '{"path":""}',
    });
    expect(reply.status).toBe(400);
    expect(reply.text).toContain('Expecting "Bearer <oauth2-access-token>"');
  });

  it('accepts the authorization URL parameter', async () => {
    const accessToken = await fetchAccessToken(emulator);
    const query = new URLSearchParams({ authorization: `Bearer ${accessToken}` });
    const reply = await sendRequest(`${emulator.url}/2/files/list_folder?${query}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"path":""}',
    });
    expect(reply.status).toBe(200);
  });

  it('logs the grant type but no secrets', async () => {
    await fetchAccessToken(emulator);
    const [call] = emulator.calls();
    expect(call?.route).toBe('oauth2/token');
    expect(call?.arg).toEqual({ grant_type: 'refresh_token' });
    expect(JSON.stringify(emulator.calls())).not.toContain('refresh-1');
    expect(JSON.stringify(emulator.calls())).not.toContain('secret-1');
  });
});

describe('emulator token expiry in real time', () => {
  it('returns expired_access_token after a 1 s TTL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'emulator-ttl-'));
    const emulator = await startEmulator({ dataDir, accessTokenTtlSeconds: 1 });
    try {
      const accessToken = await fetchAccessToken(emulator);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const reply = await sendRequest(`${emulator.url}/2/users/get_space_usage`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}` },
      });
      expect(reply.status).toBe(401);
      expect((reply.json() as { error: unknown }).error).toEqual({ '.tag': 'expired_access_token' });
    } finally {
      await emulator.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
