// --metadata-cache: a restarted mount loads the snapshot, catches up from its cursor and walks
// the whole tree in at most 5 API calls. A change made while it was down shows after the restart.

import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fuseAvailable, run, spawnDaemon, spawnEmulator, type DaemonProcess, type EmulatorProcess } from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping metadata snapshot tests: ${fuse.reason}`);

const FOLDERS = 100;
const FILES_PER_FOLDER = 50;
const MAX_RESTART_CALLS = 5;

describe.skipIf(!fuse.ok)('mount metadata snapshot', () => {
  let workDir: string;
  let configFile: string;
  let mountpoint: string;
  let snapshotDir: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-snapshot-'));
    const source = path.join(workDir, 'data');
    for (let folder = 0; folder < FOLDERS; folder++) {
      const dir = path.join(source, 'tree', `d${folder}`);
      await mkdir(dir, { recursive: true });
      await Promise.all(Array.from({ length: FILES_PER_FOLDER }, (_, i) => writeFile(path.join(dir, `f${i}.txt`), String(i))));
    }
    mountpoint = path.join(workDir, 'mnt');
    snapshotDir = path.join(workDir, 'state');
    await mkdir(mountpoint);
    await mkdir(snapshotDir);
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function findCount(): Promise<number> {
    const result = await run('find', [path.join(mountpoint, 'tree'), '-type', 'f', '-printf', '%s %P\n']);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.split('\n').filter(Boolean).length;
  }

  it('writes the snapshot with mode 0600 at shutdown', async () => {
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--metadata-cache', snapshotDir] });
    expect(await findCount()).toBe(FOLDERS * FILES_PER_FOLDER);
    await daemon.stop();
    daemon = undefined;
    const info = await stat(path.join(snapshotDir, 'metadata-cache.json'));
    expect(info.mode & 0o777).toBe(0o600);
  });

  it('restarts in at most 5 calls', async () => {
    await emulator.clearCalls();
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--metadata-cache', snapshotDir] });
    expect(await findCount()).toBe(FOLDERS * FILES_PER_FOLDER);
    const calls = await emulator.calls();
    console.log('restart calls', calls.map((call) => call.route));
    expect(calls.length).toBeLessThanOrEqual(MAX_RESTART_CALLS);
    expect(calls.filter((call) => call.route === 'files/list_folder').length).toBe(0);
    expect(calls.filter((call) => call.route === 'files/list_folder/continue').length).toBe(1);
    await daemon.stop();
    daemon = undefined;
  });

  it('catches up with a change made while down', async () => {
    const response = await fetch(`${emulator.url}/_emulator/files/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/tree/d0/new.txt', content_base64: Buffer.from('new').toString('base64') }),
    });
    expect(response.status).toBe(200);
    await emulator.clearCalls();
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--metadata-cache', snapshotDir] });
    expect(await findCount()).toBe(FOLDERS * FILES_PER_FOLDER + 1);
    const calls = await emulator.calls();
    expect(calls.filter((call) => call.route === 'files/list_folder').length).toBe(0);
    expect(calls.length).toBeLessThanOrEqual(MAX_RESTART_CALLS);
  });
});
