// Remote changes made through the emulator's control endpoints must show through the mount
// within 2 s, by the change watcher (longpoll, then list_folder/continue) and a 1 s kernel
// attribute timeout. Each check first makes the mount cache the old state, so that a pass
// cannot come from a cold cache.

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
  type EmulatorProcess,
} from '../helpers/processes.js';
import { listTree } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping metadata change tests: ${fuse.reason}`);

const C_LOCALE_ENV = { ...process.env, LC_ALL: 'C' };
const VISIBLE_WITHIN_MS = 2_000;
// How long to keep polling before failing, so that a slow change reports its real delay.
const GIVE_UP_AFTER_MS = 10_000;

/** Polls `check` every 50 ms and returns the ms until it first held, or throws after 10 s. */
async function msUntil(check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > GIVE_UP_AFTER_MS) throw new Error(`not seen within ${GIVE_UP_AFTER_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!fuse.ok)('mount metadata changes', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;

  const control = async (operation: string, body: unknown): Promise<void> => {
    const response = await fetch(`${emulator.url}/_emulator/${operation}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(response.status, `${operation}: ${await response.clone().text()}`).toBe(200);
  };
  const writeRemote = (dropboxPath: string, text: string) =>
    control('files/write', { path: dropboxPath, content_base64: Buffer.from(text).toString('base64') });
  const ls = async (relativePath: string): Promise<string[]> => {
    const result = await run('ls', ['-1A', path.join(mountpoint, relativePath)], { env: C_LOCALE_ENV });
    return result.stdout.split('\n').filter(Boolean);
  };
  const cat = async (relativePath: string) => run('cat', [path.join(mountpoint, relativePath)]);
  const stat = async (relativePath: string) =>
    run('stat', ['-c', '%F %s', path.join(mountpoint, relativePath)]);

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-changes-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(path.join(source, 'Documents', 'Finance'), { recursive: true });
    await mkdir(path.join(source, 'keep'), { recursive: true });
    await writeFile(path.join(source, 'Documents', 'Finance', 'a.pdf'), 'pdf bytes\n');
    await writeFile(path.join(source, 'Documents', 'notes.txt'), 'version one\n');
    await writeFile(path.join(source, 'Café.txt'.normalize('NFC')), 'coffee\n');
    await writeFile(path.join(source, 'keep', 'old.txt'), 'to be moved\n');
    await writeFile(path.join(source, 'keep', 'doomed.txt'), 'to be deleted\n');
    await mkdir(mountpoint);

    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('shows a new file within 2 s', async () => {
    expect(await ls('Documents')).toEqual(['Finance', 'notes.txt']);
    await writeRemote('/Documents/new.txt', 'fresh\n');
    const ms = await msUntil(async () => (await ls('Documents')).includes('new.txt'));
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);
    expect((await cat('Documents/new.txt')).stdout).toBe('fresh\n');
  });

  it('keeps folder times and takes client_modified', async () => {
    const mtime = async (relativePath: string) =>
      (await run('stat', ['-c', '%Y', path.join(mountpoint, relativePath)])).stdout.trim();
    const folderBefore = await mtime('Documents');
    await control('files/write', {
      path: '/Documents/dated.txt',
      content_base64: Buffer.from('dated\n').toString('base64'),
      client_modified: '2021-03-04T05:06:07Z',
    });
    await msUntil(async () => (await ls('Documents')).includes('dated.txt'));
    expect(await mtime('Documents/dated.txt')).toBe(String(Date.parse('2021-03-04T05:06:07Z') / 1000));
    // The folder was listed again after the change, and its time stayed the same.
    expect(await mtime('Documents')).toBe(folderBefore);
    await control('files/delete', { path: '/Documents/dated.txt' });
    await msUntil(async () => !(await ls('Documents')).includes('dated.txt'));
  });

  it('shows an overwrite within 2 s', async () => {
    expect((await cat('Documents/notes.txt')).stdout).toBe('version one\n');
    await writeRemote('/Documents/notes.txt', 'version two, longer\n');
    const ms = await msUntil(async () => (await cat('Documents/notes.txt')).stdout === 'version two, longer\n');
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);
    expect((await stat('Documents/notes.txt')).stdout.trim()).toBe('regular file 20');
  });

  it('hides a deleted file within 2 s', async () => {
    expect((await stat('keep/doomed.txt')).code).toBe(0);
    await control('files/delete', { path: '/keep/doomed.txt' });
    const ms = await msUntil(async () => (await stat('keep/doomed.txt')).code !== 0);
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);
    expect(await ls('keep')).not.toContain('doomed.txt');
  });

  it('shows a move within 2 s', async () => {
    expect(await ls('keep')).toContain('old.txt');
    await control('files/move', { from: '/keep/old.txt', to: '/Documents/moved.txt' });
    const ms = await msUntil(async () => (await stat('Documents/moved.txt')).code === 0);
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);
    expect(await ls('keep')).not.toContain('old.txt');
    expect((await cat('Documents/moved.txt')).stdout).toBe('to be moved\n');
  });

  it('shows a new folder within 2 s', async () => {
    expect(await ls('')).not.toContain('Made');
    await control('files/mkdir', { path: '/Made/Inner' });
    const ms = await msUntil(async () => (await ls('')).includes('Made'));
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);
    expect((await stat('Made/Inner')).stdout.trim()).toBe('directory 0');
  });

  it('finds names in any case', async () => {
    const result = await stat('documents/FINANCE/a.pdf');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('regular file 10');
  });

  it('finds an NFC name typed as NFD', async () => {
    const result = await run('cat', [path.join(mountpoint, 'Café.txt'.normalize('NFD'))]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('coffee\n');
  });

  it('lists each name once in its real case', async () => {
    expect(await ls('')).toEqual(['Café.txt', 'Documents', 'Made', 'keep']);
    expect(await ls('Documents')).toEqual(['Finance', 'moved.txt', 'new.txt', 'notes.txt']);
    expect(await ls('Documents/Finance')).toEqual(['a.pdf']);
  });

  it('recovers from a cursor reset', async () => {
    const fault = { route: 'files/list_folder/continue', fault: 'reset', times: 1 };
    const response = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fault),
    });
    expect(response.ok).toBe(true);
    await emulator.clearCalls();
    expect(await ls('keep')).toEqual([]);
    await writeRemote('/keep/after-reset.txt', 'after\n');
    const ms = await msUntil(async () => (await ls('keep')).includes('after-reset.txt'));
    expect(ms).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);

    const routes = (await emulator.calls()).map((call) => call.route);
    expect(routes).toContain('files/list_folder/get_latest_cursor');
    expect(daemon.stderr()).toContain('metadata cache cleared after a cursor reset');
    expect(await listTree(mountpoint)).toEqual(await listTree(source));
  });

  it('stops the watcher on unmount', async () => {
    const status = await daemon.stop();
    expect(status.code).toBe(0);
    expect(daemon.stderr()).toContain('"msg":"unmounted"');
  });
});
