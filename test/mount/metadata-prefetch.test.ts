// API-call counts of metadata walks, from the emulator's call log. A cold `find` stats 20,000
// files in 1,000 folders, with the whole-tree prefetch and without it. Repeated stats look up a
// missing name in a folder too large to keep as a listing.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  fuseAvailable,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorCall,
  type EmulatorProcess,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping metadata prefetch tests: ${fuse.reason}`);

const FOLDERS = 1_000;
const FILES_PER_FOLDER = 20;
const FILES = FOLDERS * FILES_PER_FOLDER;
const BIG_FOLDER_FILES = 1_200;
// Below BIG_FOLDER_FILES, so `big/` is too large to keep as a listing.
const CACHE_ENTRIES = 1_000;
const MAX_PREFETCH_CALLS = 15;

const countRoutes = (calls: EmulatorCall[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const call of calls) counts[call.route] = (counts[call.route] ?? 0) + 1;
  return counts;
};

async function makeWideTree(root: string): Promise<void> {
  for (let folder = 0; folder < FOLDERS; folder++) {
    const dir = path.join(root, 'tree', `folder-${String(folder).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let file = 0; file < FILES_PER_FOLDER; file++) {
      writes.push(writeFile(path.join(dir, `file-${file}.txt`), String(file)));
    }
    await Promise.all(writes);
  }
}

async function makeBigFolder(root: string): Promise<void> {
  await mkdir(path.join(root, 'big'), { recursive: true });
  const writes: Promise<void>[] = [];
  for (let file = 0; file < BIG_FOLDER_FILES; file++) {
    writes.push(writeFile(path.join(root, 'big', `entry-${file}.txt`), 'x'));
  }
  await Promise.all(writes);
}

describe.skipIf(!fuse.ok)('mount metadata prefetch', () => {
  let workDir: string;
  let configFile: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-prefetch-'));
    const source = path.join(workDir, 'data');
    await makeWideTree(source);
    await makeBigFolder(source);
    await mkdir(path.join(workDir, 'mnt'));
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function mount(extraArgs: string[]): Promise<string> {
    await daemon?.stop();
    await emulator.clearCalls();
    daemon = await spawnDaemon({ mountpoint: path.join(workDir, 'mnt'), config: configFile, extraArgs });
    return daemon.mountpoint;
  }

  // `find -printf %s` stats every entry, as `ls -lR` or a backup walk would.
  async function findAndStat(mountpoint: string): Promise<string[]> {
    const result = await run('find', [path.join(mountpoint, 'tree'), '-type', 'f', '-printf', '%s %P\n'], {
      timeoutMs: 120_000,
    });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.split('\n').filter(Boolean);
  }

  it('walks the tree in at most 15 calls with prefetch', async () => {
    const mountpoint = await mount([]);
    const lines = await findAndStat(mountpoint);
    expect(lines.length).toBe(FILES);
    expect(lines).toContain('1 folder-0999/file-1.txt');

    const calls = await emulator.calls();
    const counts = countRoutes(calls);
    console.log(`find + stat of ${FILES} files with prefetch: ${calls.length} calls`, counts);
    expect(calls.length).toBeLessThanOrEqual(MAX_PREFETCH_CALLS);
    expect(counts['files/get_metadata'] ?? 0).toBe(0);
  });

  it('lists each folder once without prefetch', async () => {
    const mountpoint = await mount(['--no-prefetch']);
    const lines = await findAndStat(mountpoint);
    expect(lines.length).toBe(FILES);

    const calls = await emulator.calls();
    const listed = calls.filter((call) => call.route === 'files/list_folder');
    const listedPaths = listed.map((call) => String((call.arg as { path: string }).path));
    console.log(`find + stat of ${FILES} files without prefetch: ${calls.length} calls`, countRoutes(calls));
    // The root, tree/ and its 1,000 folders.
    expect(listed.length).toBe(FOLDERS + 2);
    expect(new Set(listedPaths).size).toBe(listed.length);
    expect(countRoutes(calls)['files/list_folder/continue'] ?? 0).toBe(0);
    expect(countRoutes(calls)['files/get_metadata'] ?? 0).toBe(0);
  });

  it('answers a missing name once', async () => {
    const mountpoint = await mount(['--no-prefetch', '--cache-entries', String(CACHE_ENTRIES)]);
    const missing = path.join(mountpoint, 'big', 'missing.txt');
    for (let i = 0; i < 5; i++) {
      const result = await run('stat', [missing]);
      expect(result.stderr).toContain('No such file or directory');
    }
    const bigCalls = (await emulator.calls()).filter((call) =>
      String((call.arg as { path?: string } | null)?.path ?? '').startsWith('/big'),
    );
    expect(bigCalls.map((call) => call.route)).toEqual(['files/list_folder']);
  });

  it('forgets a missing name once it appears', async () => {
    const response = await fetch(`${emulator.url}/_emulator/files/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/big/missing.txt', content_base64: Buffer.from('here').toString('base64') }),
    });
    expect(response.status).toBe(200);
    const missing = path.join(daemon?.mountpoint ?? '', 'big', 'missing.txt');
    const started = Date.now();
    let result = await run('stat', ['-c', '%s', missing]);
    while (result.code !== 0 && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = await run('stat', ['-c', '%s', missing]);
    }
    expect(result.stdout.trim()).toBe('4');
    expect(Date.now() - started).toBeLessThanOrEqual(2_000);
  });
});
