import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { startTestEmulator, type HttpReply, type TestEmulator } from '../../src/emulator/testing.js';

describe('emulator files/download', () => {
  let test: TestEmulator;
  let content: Buffer;

  beforeEach(async () => {
    test = await startTestEmulator();
    content = randomBytes(1000);
    await writeFile(join(test.dataDir, 'data.bin'), content);
  });

  afterEach(async () => {
    await test.close();
  });

  function download(arg: unknown, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'POST'): Promise<HttpReply> {
    const argHeader: Record<string, string> = arg === undefined ? {} : { 'Dropbox-API-Arg': toHeaderSafeJson(arg) };
    return test.send('/2/files/download', {
      method,
      headers: { Authorization: `Bearer ${test.accessToken}`, ...argHeader, ...headers },
    });
  }

  it('sends the whole file with the result header', async () => {
    const reply = await download({ path: '/DATA.bin' });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/octet-stream');
    expect(reply.headers['content-length']).toBe('1000');
    expect(reply.body.equals(content)).toBe(true);
    const result = JSON.parse(reply.headers['dropbox-api-result'] as string) as Record<string, unknown>;
    expect(result['.tag']).toBeUndefined();
    expect(result.name).toBe('data.bin');
    expect(result.size).toBe(1000);
    expect(result.is_downloadable).toBe(true);
    expect(result.content_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(reply.headers.etag).toBe(`W/"${result.rev as string}"`);
  });

  it('escapes a non-ASCII name in Dropbox-API-Result', async () => {
    await mkdir(join(test.dataDir, 'Ünï'));
    await writeFile(join(test.dataDir, 'Ünï', 'naïve 😀.txt'), 'x');
    const reply = await download({ path: '/ünï/NAÏVE 😀.TXT' });
    expect(reply.status, reply.text).toBe(200);
    const header = reply.headers['dropbox-api-result'] as string;
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(header).toContain('"name":"na\\u00efve \\ud83d\\ude00.txt"');
    expect((JSON.parse(header) as { path_display: string }).path_display).toBe('/Ünï/naïve 😀.txt');
  });

  it('accepts GET with the arg URL parameter', async () => {
    const query = new URLSearchParams({ arg: JSON.stringify({ path: '/data.bin' }) });
    const reply = await test.send(`/2/files/download?${query}`, {
      headers: { Authorization: `Bearer ${test.accessToken}` },
    });
    expect(reply.status).toBe(200);
    expect(reply.body.equals(content)).toBe(true);
  });

  it('serves the three Range forms with 206', async () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=900-5000', 900, 999],
      ['bytes=-5000', 0, 999],
    ];
    for (const [range, start, end] of cases) {
      const reply = await download({ path: '/data.bin' }, { Range: range });
      expect(reply.status, range).toBe(206);
      expect(reply.headers['content-range'], range).toBe(`bytes ${start}-${end}/1000`);
      expect(reply.headers['content-length'], range).toBe(String(end - start + 1));
      expect(reply.body.equals(content.subarray(start, end + 1)), range).toBe(true);
      const result = JSON.parse(reply.headers['dropbox-api-result'] as string) as { size: number };
      expect(result.size, range).toBe(1000);
    }
  });

  it('answers 416 for ranges past the end', async () => {
    for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
      const reply = await download({ path: '/data.bin' }, { Range: range });
      expect(reply.status, range).toBe(416);
      expect(reply.headers['content-range'], range).toBe('bytes */1000');
    }
  });

  it('ignores a multi-range header', async () => {
    const reply = await download({ path: '/data.bin' }, { Range: 'bytes=0-1,5-6' });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(1000);
  });

  it('serves an empty file', async () => {
    await writeFile(join(test.dataDir, 'empty'), '');
    const reply = await download({ path: '/empty' });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(0);
    const ranged = await download({ path: '/empty' }, { Range: 'bytes=0-' });
    expect(ranged.status).toBe(416);
  });

  it('answers 304 for a matching If-None-Match', async () => {
    const first = await download({ path: '/data.bin' });
    const reply = await download({ path: '/data.bin' }, { 'If-None-Match': first.headers.etag as string });
    expect(reply.status).toBe(304);
    expect(reply.body.length).toBe(0);
  });

  it('returns path/not_file for a folder and path/not_found for a missing file', async () => {
    await mkdir(join(test.dataDir, 'folder'));
    const folder = await download({ path: '/folder' });
    expect(folder.status).toBe(409);
    expect(folder.headers['content-type']).toBe('application/json');
    expect(folder.json()).toEqual({
      error_summary: expect.stringMatching(/^path\/not_file\/\.{0,3}$/),
      error: { '.tag': 'path', path: { '.tag': 'not_file' } },
    });
    const missing = await download({ path: '/nope' });
    expect((missing.json() as { error: unknown }).error).toEqual({ '.tag': 'path', path: { '.tag': 'not_found' } });
  });

  it('rejects a missing or bad argument with 400 text', async () => {
    const missing = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}` },
    });
    expect(missing.status).toBe(400);
    expect(missing.text).toBe(
      'Error in call to API function "files/download": Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".',
    );
    const badJson = await download(undefined, { 'Dropbox-API-Arg': '{path' });
    expect(badJson.text).toBe('Error in call to API function "files/download": HTTP header "Dropbox-API-Arg": could not decode input as JSON');
    const unknown = await download({ pat: '/data.bin' });
    expect(unknown.text).toBe('Error in call to API function "files/download": HTTP header "Dropbox-API-Arg": unknown field \'pat\'');
    const json = await download({ path: '/data.bin' }, { 'Content-Type': 'application/json' });
    expect(json.status).toBe(400);
    expect(json.text).toContain('Bad HTTP "Content-Type" header');
  });

  it('sends multi-chunk files and ranges intact', async () => {
    // Larger than the body sender's three 1 MiB buffers, with a tail that is not a whole chunk.
    const large = randomBytes(5 * 1024 * 1024 + 123);
    await writeFile(join(test.dataDir, 'large.bin'), large);
    const whole = await download({ path: '/large.bin' });
    expect(whole.status).toBe(200);
    expect(whole.body.length).toBe(large.length);
    expect(whole.body.equals(large)).toBe(true);
    const start = 1024 * 1024 - 10;
    const end = 3 * 1024 * 1024 + 5;
    const partial = await download({ path: '/large.bin' }, { Range: `bytes=${start}-${end}` });
    expect(partial.status).toBe(206);
    expect(partial.headers['content-range']).toBe(`bytes ${start}-${end}/${large.length}`);
    expect(partial.body.equals(large.subarray(start, end + 1))).toBe(true);
    const calls = test.emulator.calls().filter((call) => call.route === 'files/download');
    expect(calls.map((call) => call.bytes)).toEqual([large.length, end - start + 1]);
  });

  it('closes the file when the client aborts', async () => {
    const bigPath = join(test.dataDir, 'big.bin');
    await writeFile(bigPath, Buffer.alloc(64 * 1024 * 1024, 1));
    // Node closes a leaked FileHandle on garbage collection and warns, so a leak can look closed.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const response = await request(`${test.emulator.url}/2/files/download`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': '{"path":"/big.bin"}' },
        signal: controller.signal,
      });
      await response.body[Symbol.asyncIterator]().next();
      expect(await descriptorsOpenOn(bigPath)).toBeGreaterThan(0);
      controller.abort();
      await response.body.dump().catch(() => undefined);
    }
    let open = -1;
    for (let attempt = 0; attempt < 50 && open !== 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      open = await descriptorsOpenOn(bigPath);
    }
    process.off('warning', onWarning);
    expect(open).toBe(0);
    expect(warnings.filter((message) => message.includes('garbage collection'))).toEqual([]);
    const calls = test.emulator.calls().filter((call) => call.route === 'files/download');
    expect(calls).toHaveLength(5);
    for (const call of calls) {
      expect(call.bytes).toBeLessThan(64 * 1024 * 1024);
    }
  });
});

/** Counts this process's file descriptors open on `path` (Linux /proc). */
async function descriptorsOpenOn(path: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) {
      count++;
    }
  }
  return count;
}
