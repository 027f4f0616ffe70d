// The daemon's Dropbox client against the emulator over loopback: pagination, metadata by id,
// ranged downloads, non-ASCII paths, token expiry and a rejected refresh token.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { parseConfig } from '../../src/config/config.js';
import { ApiError, AuthError } from '../../src/dropbox/errors.js';
import type { FileMetadata, ListFolderResult, Metadata, SpaceUsage } from '../../src/dropbox/types.js';
import { silentLogger } from '../../src/log/logger.js';

const WIDE_ENTRIES = 2500;

function clientFor(emulator: Emulator, overrides: Record<string, string> = {}, now?: () => number) {
  const config = parseConfig(
    {
      appKey: emulator.appKey,
      appSecret: emulator.appSecret,
      refreshToken: emulator.refreshToken,
      apiUrl: emulator.url,
      contentUrl: emulator.url,
      notifyUrl: emulator.url,
      ...overrides,
    },
    'test',
  );
  return new DropboxClient({ config, timeoutMs: 5000, log: silentLogger(), now });
}

async function readBody(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('DropboxClient against the emulator', () => {
  let dataDir: string;
  let emulator: Emulator;
  let client: DropboxClient;
  const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-client-'));
    await mkdir(path.join(dataDir, 'wide'));
    await Promise.all(
      Array.from({ length: WIDE_ENTRIES }, (_, i) => writeFile(path.join(dataDir, 'wide', `f${i}.txt`), `${i}`)),
    );
    await writeFile(path.join(dataDir, 'data.bin'), content);
    await writeFile(path.join(dataDir, 'Caf\u00e9 \u{1F600}.txt'), 'unicode name\n');
    emulator = await startEmulator({ dataDir });
    client = clientFor(emulator);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await emulator?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('pages a 2,500-entry folder', async () => {
    let page = await client.rpc<ListFolderResult>('files/list_folder', { path: '/wide', limit: 2000 });
    const names = page.entries.map((entry) => entry.name);
    expect(page.has_more).toBe(true);
    while (page.has_more) {
      page = await client.rpc<ListFolderResult>('files/list_folder/continue', { cursor: page.cursor });
      names.push(...page.entries.map((entry) => entry.name));
    }
    expect(names).toHaveLength(WIDE_ENTRIES);
    expect(new Set(names).size).toBe(WIDE_ENTRIES);
  });

  it('reads metadata by path and by id', async () => {
    const byPath = await client.rpc<Metadata>('files/get_metadata', { path: '/DATA.BIN' });
    expect(byPath['.tag']).toBe('file');
    const file = byPath as FileMetadata;
    expect(file.name).toBe('data.bin');
    expect(file.size).toBe(content.length);
    const byId = await client.rpc<Metadata>('files/get_metadata', { path: file.id });
    expect((byId as FileMetadata).rev).toBe(file.rev);
  });

  it('decodes not_found', async () => {
    const error = await client.rpc('files/get_metadata', { path: '/nope' }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).tags).toEqual(['path', 'not_found']);
  });

  it('downloads an exact range', async () => {
    const download = await client.download('/data.bin', { start: 1000, end: 133_071 });
    expect(download.offset).toBe(1000);
    expect(download.length).toBe(132_072);
    expect(download.metadata.size).toBe(content.length);
    expect((await readBody(download.body)).equals(content.subarray(1000, 133_072))).toBe(true);
  });

  it('downloads a non-ASCII path', async () => {
    const download = await client.download('/Caf\u00e9 \u{1F600}.txt');
    expect(download.metadata.name).toBe('Caf\u00e9 \u{1F600}.txt');
    expect((await readBody(download.body)).toString()).toBe('unicode name\n');
  });

  it('reads the space usage', async () => {
    const usage = await client.rpc<SpaceUsage>('users/get_space_usage');
    expect(usage.used).toBeGreaterThanOrEqual(content.length);
    expect(usage.allocation['.tag']).toBe('individual');
  });

  it('names the fix for a rejected refresh token', async () => {
    const bad = clientFor(emulator, { refreshToken: 'not-the-token' });
    const error = await bad.rpc('files/list_folder', { path: '' }).catch((err: unknown) => err);
    await bad.close();
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).tag).toBe('invalid_grant');
    expect((error as Error).message).toContain('dropbox-mount login --app-key');
    expect((error as Error).message).not.toContain('not-the-token');
  });
});

describe('token expiry against the emulator', () => {
  it('refreshes an expired token and retries', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-expiry-'));
    await writeFile(path.join(dataDir, 'a.txt'), 'a');
    const emulator = await startEmulator({ dataDir, accessTokenTtlSeconds: 1 });
    // A clock stuck at the start keeps the client from refreshing ahead, so the emulator's 401
    // is what triggers the refresh.
    const frozen = Date.now();
    const client = clientFor(emulator, {}, () => frozen);
    try {
      await client.rpc('files/list_folder', { path: '' });
      await new Promise((resolve) => setTimeout(resolve, 2100));
      emulator.clearCalls();
      const result = await client.rpc<ListFolderResult>('files/list_folder', { path: '' });
      expect(result.entries.map((entry) => entry.name)).toEqual(['a.txt']);
      const routes = emulator.calls().map((call) => `${call.route} ${call.status}`);
      expect(routes).toEqual(['files/list_folder 401', 'oauth2/token 200', 'files/list_folder 200']);
      expect(client.tokens.refreshCount).toBe(2);
    } finally {
      await client.close();
      await emulator.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
