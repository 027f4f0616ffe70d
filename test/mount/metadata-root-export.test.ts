// Paper docs listed and read as their exports, and a root mounted by id that is moved and
// deleted on the emulator while mounted. API calls are counted from the emulator's call log.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping root and export tests: ${fuse.reason}`);

const NOTES = '# Notes\n\nsome *markdown*\n';
const GIVE_UP_AFTER_MS = 10_000;

async function until(check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > GIVE_UP_AFTER_MS) throw new Error(`not seen within ${GIVE_UP_AFTER_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!fuse.ok)('mount exports and root by id', () => {
  let workDir: string;
  let configFile: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess | undefined;

  const control = async (operation: string, body: unknown): Promise<void> => {
    const response = await fetch(`${emulator.url}/_emulator/files/${operation}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(response.status, `${operation}: ${await response.clone().text()}`).toBe(200);
  };

  async function rpc(route: string, arg: unknown): Promise<Record<string, unknown>> {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: config.refreshToken ?? '',
      client_id: config.appKey ?? '',
      client_secret: config.appSecret ?? '',
    });
    const token = (await (await fetch(`${emulator.url}/oauth2/token`, { method: 'POST', body: form })).json()) as {
      access_token: string;
    };
    const response = await fetch(`${emulator.url}/2/${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(arg),
    });
    return (await response.json()) as Record<string, unknown>;
  }

  async function mount(extraArgs: string[]): Promise<void> {
    await daemon?.stop();
    await emulator.clearCalls();
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs });
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-root-export-'));
    const source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(path.join(source, 'Project', 'sub'), { recursive: true });
    await writeFile(path.join(source, 'Project', 'Notes.paper'), NOTES);
    await writeFile(path.join(source, 'Project', 'plain.txt'), 'plain\n');
    await writeFile(path.join(source, 'Project', 'sub', 'deep.txt'), 'deep\n');
    await mkdir(mountpoint);
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('lists and reads a Paper doc export', async () => {
    await mount([]);
    const ls = await run('ls', ['-1', path.join(mountpoint, 'Project')]);
    expect(ls.stdout.split('\n').filter(Boolean)).toEqual(expect.arrayContaining(['Notes.paper.md', 'plain.txt']));
    expect(ls.stdout).not.toMatch(/^Notes\.paper$/m);
    const size = await run('stat', ['-c', '%s', path.join(mountpoint, 'Project', 'Notes.paper.md')]);
    expect(size.stdout.trim()).toBe(String(Buffer.byteLength(NOTES)));
    for (let i = 0; i < 3; i++) {
      const cat = await run('cat', [path.join(mountpoint, 'Project', 'Notes.paper.md')]);
      expect(cat.stdout).toBe(NOTES);
    }
    const exports = (await emulator.calls()).filter((call) => call.route === 'files/export');
    // Exported once for the rev: stat, then three reads, from memory.
    expect(exports.length).toBe(1);
  });

  it('hides Paper docs with --hide-non-downloadable', async () => {
    await mount(['--hide-non-downloadable']);
    const ls = await run('ls', ['-1', path.join(mountpoint, 'Project')]);
    expect(ls.stdout).not.toContain('Notes.paper');
    const stat = await run('stat', [path.join(mountpoint, 'Project', 'Notes.paper.md')]);
    expect(stat.code).not.toBe(0);
    expect((await emulator.calls()).some((call) => call.route === 'files/export')).toBe(false);
  });

  it('follows a root mounted by id when moved', async () => {
    const metadata = await rpc('files/get_metadata', { path: '/Project' });
    const rootId = String(metadata.id);
    expect(rootId).toMatch(/^id:/);
    await mount(['--root', rootId]);
    expect((await run('cat', [path.join(mountpoint, 'sub', 'deep.txt')])).stdout).toBe('deep\n');

    await control('move', { from: '/Project', to: '/Moved' });
    await until(async () => (daemon?.logLines() ?? []).some((line) => line.msg === 'root folder moved; following it'));
    await control('write', { path: '/Moved/after.txt', content_base64: Buffer.from('after\n').toString('base64') });
    await until(async () => (await run('cat', [path.join(mountpoint, 'after.txt')])).stdout === 'after\n');
    expect((await run('cat', [path.join(mountpoint, 'sub', 'deep.txt')])).stdout).toBe('deep\n');
    const lookups = (await emulator.calls()).filter(
      (call) => call.route === 'files/get_metadata' && (call.arg as { path?: string }).path === rootId,
    );
    // One at mount, one after the move.
    expect(lookups.length).toBe(2);
  });

  it('answers ENOENT while the root is deleted', async () => {
    await control('delete', { path: '/Moved' });
    await until(async () => (daemon?.logLines() ?? []).some((line) => line.level === 50 && String(line.msg).startsWith('root folder was deleted')));
    // The kernel may keep the old attributes for --attr-timeout (1 s).
    await until(async () => (await run('stat', [path.join(mountpoint, 'sub', 'deep.txt')])).code !== 0);
    const stat = await run('stat', [path.join(mountpoint, 'sub', 'deep.txt')]);
    expect(stat.stderr).toContain('No such file or directory');
    const ls = await run('ls', ['-A', mountpoint]);
    expect(ls.code).toBe(0);
    expect(ls.stdout.trim()).toBe('');

    await control('mkdir', { path: '/Elsewhere' });
    const calls = (await emulator.calls()).length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The deleted root is asked for by id every 2 s, and nothing else is called meanwhile.
    const later = (await emulator.calls()).slice(calls).filter((call) => call.route !== 'files/get_metadata');
    expect(later.map((call) => call.route)).toEqual([]);
  });
});
