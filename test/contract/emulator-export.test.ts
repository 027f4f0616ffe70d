import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;

describe('emulator Paper documents, export and temporary links', () => {
  let test: TestEmulator;
  let clock: number;

  beforeEach(async () => {
    clock = Date.now();
    test = await startTestEmulator({ temporaryLinkTtlSeconds: 60, now: () => clock });
    await writeFile(join(test.dataDir, 'Notes.paper'), '# Title\n\nbody <b>\n');
    await writeFile(join(test.dataDir, 'plain.txt'), 'plain');
  });

  afterEach(async () => {
    await test.close();
  });

  function contentCall(route: string, arg: Json) {
    return test.send(`/2/${route}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson(arg) },
    });
  }

  it('lists Paper documents as not downloadable', async () => {
    const listing = (await test.rpc('files/list_folder', { path: '' })).json() as { entries: Json[] };
    const paper = listing.entries.find((entry) => entry.name === 'Notes.paper');
    expect(paper).toMatchObject({
      '.tag': 'file',
      is_downloadable: false,
      export_info: { export_as: 'markdown', export_options: ['markdown', 'html', 'plain_text'] },
    });
    const download = await contentCall('files/download', { path: '/Notes.paper' });
    expect(download.status).toBe(409);
    expect(download.json()).toMatchObject({ error: { '.tag': 'unsupported_file' } });
  });

  it('exports in the listed formats only', async () => {
    const markdown = await contentCall('files/export', { path: '/notes.paper' });
    expect(markdown.status, markdown.text).toBe(200);
    expect(markdown.text).toBe('# Title\n\nbody <b>\n');
    const result = JSON.parse(markdown.headers['dropbox-api-result'] as string) as Json;
    expect(result.export_metadata).toEqual({ name: 'Notes.md', size: 18, export_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(result.file_metadata).toMatchObject({ name: 'Notes.paper', is_downloadable: false });
    expect(result.file_metadata).not.toHaveProperty('.tag');
    const html = await contentCall('files/export', { path: '/notes.paper', export_format: 'html' });
    expect(html.text).toContain('body &lt;b&gt;');
    const invalid = await contentCall('files/export', { path: '/notes.paper', export_format: 'docx' });
    expect(invalid.json()).toMatchObject({ error: { '.tag': 'invalid_export_format' } });
    const plain = await contentCall('files/export', { path: '/plain.txt' });
    expect(plain.json()).toMatchObject({ error: { '.tag': 'non_exportable' } });
  });

  it('serves temporary links until they expire', async () => {
    const reply = await test.rpc('files/get_temporary_link', { path: '/plain.txt' });
    expect(reply.status, reply.text).toBe(200);
    const { link, metadata } = reply.json() as { link: string; metadata: Json };
    expect(metadata).toMatchObject({ name: 'plain.txt', size: 5 });
    expect(metadata).not.toHaveProperty('.tag');
    expect(link.startsWith(`${test.emulator.url}/_emulator/link/`)).toBe(true);
    const fetched = await test.send(link.slice(test.emulator.url.length));
    expect(fetched.status).toBe(200);
    expect(fetched.text).toBe('plain');
    expect(fetched.headers['content-type']).toBe('text/plain');
    clock += 61_000;
    const expired = await test.send(link.slice(test.emulator.url.length));
    expect(expired.status).toBe(410);
    const paper = await test.rpc('files/get_temporary_link', { path: '/Notes.paper' });
    expect(paper.json()).toMatchObject({ error: { '.tag': 'unsupported_file' } });
  });
});
