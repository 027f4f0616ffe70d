import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;

describe('emulator authorization-code flow with PKCE', () => {
  let test: TestEmulator;
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  function authorize(params: Record<string, string>) {
    const query = new URLSearchParams({ client_id: test.emulator.appKey, response_type: 'code', ...params });
    return test.send(`/oauth2/authorize?${query.toString()}`);
  }

  function exchange(params: Record<string, string>) {
    return test.send('/oauth2/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: test.emulator.appKey, ...params }).toString(),
    });
  }

  it('redirects with code and state, and exchanges the code', async () => {
    const redirectUri = 'http://127.0.0.1:1/callback';
    const page = await authorize({
      code_challenge: challenge,
      code_challenge_method: 'S256',
      redirect_uri: redirectUri,
      state: 'xyz',
      token_access_type: 'offline',
    });
    expect(page.status).toBe(302);
    const location = new URL(page.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    expect(location.searchParams.get('state')).toBe('xyz');
    const code = location.searchParams.get('code') as string;
    const reply = await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri });
    expect(reply.status, reply.text).toBe(200);
    const body = reply.json() as Json;
    expect(body).toEqual({
      access_token: expect.stringMatching(/^sl\./),
      token_type: 'bearer',
      expires_in: 14400,
      refresh_token: test.emulator.refreshToken,
      scope: expect.any(String),
      uid: expect.stringMatching(/^\d+$/),
      account_id: expect.stringMatching(/^dbid:/),
    });
    const account = await test.rpc('users/get_current_account', undefined, { Authorization: `Bearer ${body.access_token as string}` });
    expect(account.status).toBe(200);
    const reused = await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri });
    expect((reused.json() as Json).error).toBe('invalid_grant');
  });

  it('rejects a mismatched code_verifier', async () => {
    const page = await authorize({ code_challenge: challenge, code_challenge_method: 'S256' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const code = /<code id="code">([^<]+)<\/code>/.exec(page.text)?.[1] as string;
    const reply = await exchange({ code, code_verifier: 'wrong-verifier' });
    expect(reply.status).toBe(400);
    expect(reply.json()).toEqual({ error: 'invalid_grant', error_description: 'invalid code verifier' });
  });

  it('takes the code exchange from the query string with Basic auth', async () => {
    const page = await authorize({});
    const code = /<code id="code">([^<]+)<\/code>/.exec(page.text)?.[1] as string;
    const basic = Buffer.from(`${test.emulator.appKey}:${test.emulator.appSecret}`).toString('base64');
    const reply = await test.send(`/oauth2/token?grant_type=authorization_code&code=${code}`, {
      method: 'POST',
      headers: { Authorization: `Basic ${basic}` },
    });
    expect(reply.status, reply.text).toBe(200);
    const plain = await authorize({ code_challenge: challenge, code_challenge_method: 'plain' });
    expect(plain.status).toBe(400);
  });
});
