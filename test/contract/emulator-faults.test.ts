import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errors as undiciErrors, request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { startTestEmulator, type HttpReply, type TestEmulator } from '../../src/emulator/testing.js';
import type { FaultRule } from '../../src/emulator/types.js';

const SUMMARY_DOTS = '\\.{0,3}$';

describe('emulator faults', () => {
  let test: TestEmulator;
  let content: Buffer;

  beforeEach(async () => {
    test = await startTestEmulator();
    content = randomBytes(256 * 1024);
    await writeFile(join(test.dataDir, 'data.bin'), content);
    // Drops the token request that startTestEmulator makes, so the log holds only the test's calls.
    test.emulator.clearCalls();
  });

  afterEach(async () => {
    await test.close();
  });

  async function addFault(rule: FaultRule): Promise<void> {
    const reply = await test.send('/_emulator/faults', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(rule),
    });
    expect(reply.status, reply.text).toBe(200);
  }

  function metadata(): Promise<HttpReply> {
    return test.rpc('files/get_metadata', { path: '/data.bin' });
  }

  function downloadHeaders(): Record<string, string> {
    return {
      Authorization: `Bearer ${test.accessToken}`,
      'Dropbox-API-Arg': toHeaderSafeJson({ path: '/data.bin' }),
    };
  }

  it('429 carries Retry-After and a RateLimitError', async () => {
    await addFault({ route: 'files/get_metadata', fault: '429', retryAfterSeconds: 3, reason: 'too_many_write_operations', times: 1 });
    const limited = await metadata();
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('3');
    expect(limited.headers['content-type']).toBe('application/json');
    const body = limited.json() as { error_summary: string; error: unknown };
    expect(body.error_summary).toMatch(new RegExp(`^too_many_write_operations/${SUMMARY_DOTS}`));
    expect(body.error).toEqual({ reason: { '.tag': 'too_many_write_operations' }, retry_after: 3 });
    expect((await metadata()).status).toBe(200);
    const calls = test.emulator.calls();
    expect(calls.map((call) => call.fault)).toEqual(['429', undefined]);
    expect(calls[0]).toMatchObject({ route: 'files/get_metadata', status: 429 });
  });

  it('429 defaults to too_many_requests for 1 s', async () => {
    await addFault({ route: '*', fault: '429', times: 1 });
    const limited = await metadata();
    expect(limited.headers['retry-after']).toBe('1');
    const body = limited.json() as { error_summary: string; error: unknown };
    expect(body.error_summary).toMatch(new RegExp(`^too_many_requests/${SUMMARY_DOTS}`));
    expect(body.error).toEqual({ reason: { '.tag': 'too_many_requests' }, retry_after: 1 });
  });

  it('5xx rules expire after their count', async () => {
    await addFault({ route: 'files/get_metadata', fault: '503', times: 2 });
    await addFault({ route: 'files/get_metadata', fault: '500', times: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const reply = await metadata();
      statuses.push(reply.status);
      if (reply.status >= 500) {
        expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
        expect(reply.text.length).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([503, 503, 500, 200]);
    expect(test.emulator.faults()).toEqual([]);
  });

  it('expired-token sends a 401 AuthError', async () => {
    await addFault({ route: 'files/download', fault: 'expired-token', times: 1 });
    const reply = await test.send('/2/files/download', { method: 'POST', headers: downloadHeaders() });
    expect(reply.status).toBe(401);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['www-authenticate']).toBe('Dropbox-API');
    const body = reply.json() as { error_summary: string; error: unknown };
    expect(body.error).toEqual({ '.tag': 'expired_access_token' });
    expect(body.error_summary).toMatch(new RegExp(`^expired_access_token/${SUMMARY_DOTS}`));
  });

  it('cut-after sends N bytes after full headers', async () => {
    await addFault({ route: 'files/download', fault: 'cut-after', bytes: 100_000, times: 1 });
    const cut = await rawDownload(test.emulator.url, downloadHeaders());
    expect(cut.status).toBe(200);
    expect(cut.headers['content-length']).toBe(String(content.length));
    expect(cut.received.length).toBe(100_000);
    expect(cut.received.equals(content.subarray(0, 100_000))).toBe(true);
    expect(cut.complete).toBe(false);
    const whole = await rawDownload(test.emulator.url, downloadHeaders());
    expect(whole.complete).toBe(true);
    expect(whole.received.equals(content)).toBe(true);
    const calls = test.emulator.calls();
    expect(calls[0]).toMatchObject({ route: 'files/download', status: 200, bytes: 100_000, fault: 'cut-after' });
    expect(calls[1]?.fault).toBeUndefined();
  });

  it('cut-after skips routes without a file body', async () => {
    await addFault({ route: '*', fault: 'cut-after', bytes: 10, times: 1 });
    expect((await metadata()).status).toBe(200);
    expect(test.emulator.faults()).toHaveLength(1);
    const cut = await rawDownload(test.emulator.url, downloadHeaders());
    expect(cut.received.length).toBe(10);
    expect(test.emulator.faults()).toEqual([]);
  });

  it('black-hole is ended by the client timeout', async () => {
    await addFault({ route: 'files/get_metadata', fault: 'black-hole', times: 1 });
    const started = performance.now();
    const pending = request(`${test.emulator.url}/2/files/get_metadata`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ path: '/data.bin' }),
      headersTimeout: 300,
    });
    await expect(pending).rejects.toBeInstanceOf(undiciErrors.HeadersTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    await waitFor(() => test.emulator.calls().length === 1);
    expect(test.emulator.calls()[0]).toMatchObject({ route: 'files/get_metadata', status: 0, bytes: 0, fault: 'black-hole' });
    expect((await metadata()).status).toBe(200);
  });

  it('black-hole ends when the emulator closes', async () => {
    await addFault({ route: '*', fault: 'black-hole' });
    const pending = request(`${test.emulator.url}/2/files/get_metadata`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ path: '/data.bin' }),
    });
    const outcome = pending.then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await test.emulator.close();
    expect(await outcome).toBe('failed');
  });

  it('change-after rewrites the file mid-download', async () => {
    const before = (await metadata()).json() as { rev: string; id: string; content_hash: string };
    await addFault({ route: 'files/download', fault: 'change-after', bytes: 1000, times: 1 });
    const reply = await rawDownload(test.emulator.url, downloadHeaders());
    // The download in flight keeps serving the version its result header describes.
    expect(reply.complete).toBe(true);
    expect(reply.received.equals(content)).toBe(true);
    const changed = await readFile(join(test.dataDir, 'data.bin'));
    expect(changed.length).toBe(content.length);
    expect(changed[0]).toBe(~(content[0] as number) & 0xff);
    const after = (await metadata()).json() as { rev: string; content_hash: string };
    expect(after.rev).not.toBe(before.rev);
    expect(after.content_hash).not.toBe(before.content_hash);
    expect(test.emulator.calls()[1]).toMatchObject({ route: 'files/download', fault: 'change-after' });
  });

  it('change-after writes the given content', async () => {
    await addFault({ route: 'files/download', fault: 'change-after', bytes: 0, content: 'new text', times: 1 });
    await rawDownload(test.emulator.url, downloadHeaders());
    expect(await readFile(join(test.dataDir, 'data.bin'), 'utf8')).toBe('new text');
  });

  it('reset invalidates list_folder cursors', async () => {
    const listing = (await test.rpc('files/list_folder', { path: '' })).json() as { cursor: string };
    await addFault({ route: 'files/list_folder/continue', fault: 'reset', times: 1 });
    const reply = await test.rpc('files/list_folder/continue', { cursor: listing.cursor });
    expect(reply.status, reply.text).toBe(409);
    expect((reply.json() as { error: unknown }).error).toEqual({ '.tag': 'reset' });
    expect(test.emulator.calls().at(-1)?.fault).toBe('reset');
  });

  it('star rules leave token refresh alone', async () => {
    await addFault({ route: '*', fault: '503' });
    const token = await test.send('/oauth2/token', tokenRequest(test));
    expect(token.status).toBe(200);
    expect((await metadata()).status).toBe(503);
    await addFault({ route: 'oauth2/token', fault: '503', times: 1 });
    expect((await test.send('/oauth2/token', tokenRequest(test))).status).toBe(503);
    expect(test.emulator.calls().at(-1)).toMatchObject({ route: 'oauth2/token', status: 503, fault: '503' });
  });

  it('lists and clears rules', async () => {
    await addFault({ route: 'files/download', fault: '500', times: 2 });
    await addFault({ route: '*', fault: '429' });
    await metadata();
    const listed = await test.send('/_emulator/faults');
    expect(listed.json()).toEqual([
      { id: 1, route: 'files/download', fault: '500', times: 2, remaining: 2 },
      { id: 2, route: '*', fault: '429', remaining: null },
    ]);
    const cleared = await test.send('/_emulator/faults', { method: 'DELETE' });
    expect(cleared.status).toBe(204);
    expect((await test.send('/_emulator/faults')).json()).toEqual([]);
    expect((await metadata()).status).toBe(200);
  });

  it('rejects an invalid rule with 400', async () => {
    const cases: Array<[unknown, string]> = [
      [{ route: 'files/download', fault: '418' }, '"fault" must be one of'],
      [{ route: 'files/download', fault: 'cut-after' }, 'needs "bytes"'],
      [{ route: 'files/download', fault: '429', times: 0 }, '"times" must be a whole number of at least 1'],
      [{ route: '*', fault: '500', retryAfterSeconds: 2 }, 'apply only to fault 429'],
      [{ route: '*', fault: '429', reason: 'slow' }, '"reason" must be one of'],
      [{ route: '*', fault: '429', when: 'now' }, 'unknown field "when"'],
    ];
    for (const [rule, message] of cases) {
      const reply = await test.send('/_emulator/faults', { method: 'POST', body: JSON.stringify(rule) });
      expect(reply.status, JSON.stringify(rule)).toBe(400);
      expect(reply.text, JSON.stringify(rule)).toContain(message);
    }
    const notJson = await test.send('/_emulator/faults', { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    expect(notJson.text).toContain('not valid JSON');
  });
});

interface RawDownload {
  status: number;
  headers: IncomingHttpHeaders;
  received: Buffer;
  /** False when the connection ended before Content-Length bytes arrived. */
  complete: boolean;
}

/** Downloads with node:http, which reports a short body instead of hiding it. */
function rawDownload(baseUrl: string, headers: Record<string, string>): Promise<RawDownload> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${baseUrl}/2/files/download`, { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('close', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          received: Buffer.concat(chunks),
          complete: res.complete,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function tokenRequest(test: TestEmulator): { method: 'POST'; headers: Record<string, string>; body: string } {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: test.emulator.refreshToken,
    client_id: test.emulator.appKey,
    client_secret: test.emulator.appSecret,
  });
  return { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() };
}

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error('condition not met within 5 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
