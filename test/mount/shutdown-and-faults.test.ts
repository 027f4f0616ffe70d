// How the daemon behaves when things go wrong around it. A download that gets no response fails
// with EIO by the op deadline. A daemon killed with SIGKILL leaves a stale mount that the next
// start clears. SIGTERM unmounts and exits 0 while a file is open. A debug log of a session with
// token refreshes and auth failures contains no credential.

import { open, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  CLI_PATH,
  fuseAvailable,
  isMounted,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
  type ExitStatus,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping shutdown and fault tests: ${fuse.reason}`);

const APP_SECRET = 'shutdown-test-app-secret-5f1c';
const REFRESH_TOKEN = 'shutdown-test-refresh-token-9a7e';
// The shape of the emulator's access tokens: `sl.<base64url payload>.<base64url MAC>`.
const ACCESS_TOKEN_SHAPE = /sl\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/;

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${url} failed with status ${response.status}: ${await response.text()}`);
}

function waitForExit(daemon: DaemonProcess, timeoutMs: number): Promise<ExitStatus | 'timeout'> {
  const child = daemon.process;
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/**
 * Returns the pids of processes in uninterruptible sleep (state D) that have a file under
 * `folder` open. Other test files run in parallel, so processes elsewhere are left out.
 */
async function processesInDStateUnder(folder: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The state follows the command, which is in parentheses and may contain either.
    const state = text.slice(text.lastIndexOf(')') + 2).charAt(0);
    if (state !== 'D') continue;
    let descriptors: string[];
    try {
      descriptors = await readdir(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const descriptor of descriptors) {
      const target = await readlink(`/proc/${entry}/fd/${descriptor}`).catch(() => '');
      if (target.startsWith(`${folder}/`)) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

describe.skipIf(!fuse.ok)('daemon shutdown and faults', () => {
  let workDir: string;
  let source: string;
  let emulator: EmulatorProcess;
  let configFile: string;
  let mountCount = 0;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-shutdown-'));
    source = path.join(workDir, 'data');
    await mkdir(path.join(source, 'folder'), { recursive: true });
    for (const name of ['one.txt', 'two.txt', 'three.txt', 'four.txt']) {
      await writeFile(path.join(source, name), `contents of ${name}\n`);
    }
    await writeFile(path.join(source, 'folder', 'inner.txt'), 'inner file\n');
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({
      dataDir: source,
      configFile,
      extraArgs: ['--app-secret', APP_SECRET, '--refresh-token', REFRESH_TOKEN],
    });
  });

  afterEach(async () => {
    await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
    for (const daemon of daemons.splice(0)) await daemon.stop();
  });

  afterAll(async () => {
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function newMountpoint(): Promise<string> {
    mountCount++;
    const mountpoint = path.join(workDir, `mnt${mountCount}`);
    await mkdir(mountpoint);
    return mountpoint;
  }

  async function mountDaemon(mountpoint: string, extraArgs: string[] = []): Promise<DaemonProcess> {
    const daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs });
    daemons.push(daemon);
    return daemon;
  }

  it('black-holed download fails by op deadline', async () => {
    const mountpoint = await newMountpoint();
    const daemon = await mountDaemon(mountpoint, ['--op-timeout', '3', '--request-timeout', '30']);
    const listed = await run('ls', [mountpoint]);
    expect(listed.stdout).toContain('one.txt');
    await postJson(`${emulator.url}/_emulator/faults`, { route: 'files/download', fault: 'black-hole', times: 1 });

    const started = Date.now();
    const cat = await run('cat', [path.join(mountpoint, 'one.txt')], { timeoutMs: 20_000 });
    const elapsedMs = Date.now() - started;
    expect(cat.timedOut).toBe(false);
    expect(cat.code).not.toBe(0);
    expect(cat.stderr).toContain('Input/output error');
    expect(elapsedMs).toBeLessThan(5_500);
    expect(await processesInDStateUnder(daemon.mountpoint)).toEqual([]);
    const timedOut = daemon.logLines().filter((line) => line.msg === 'op timed out, returning EIO');
    expect(timedOut.length).toBeGreaterThan(0);

    // The fault applied once, so the next read gets the file.
    const again = await run('cat', [path.join(mountpoint, 'one.txt')], { timeoutMs: 20_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('contents of one.txt\n');
  });

  it('restart after SIGKILL clears stale mount', async () => {
    const mountpoint = await newMountpoint();
    const first = await spawnDaemon({ mountpoint, config: configFile });
    const resolved = first.mountpoint;
    first.process.kill('SIGKILL');
    const killed = await waitForExit(first, 10_000);
    expect(killed).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await isMounted(resolved)).toBe(true);
    const broken = await run('stat', [resolved]);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain('Transport endpoint is not connected');

    const second = await mountDaemon(mountpoint);
    const cleared = second.logLines().filter((line) => line.msg === 'clearing a stale mount left by an earlier daemon');
    expect(cleared).toHaveLength(1);
    const cat = await run('cat', [path.join(resolved, 'two.txt')]);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout).toBe('contents of two.txt\n');
    // The killed daemon's status socket was left behind; the new daemon replaced it.
    const status = await run('node', [CLI_PATH, 'status', resolved, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).pid).toBe(second.process.pid);
  });

  it('SIGTERM with an open file unmounts', async () => {
    const mountpoint = await newMountpoint();
    const daemon = await mountDaemon(mountpoint);
    const handle = await open(path.join(daemon.mountpoint, 'three.txt'), 'r');
    try {
      const { bytesRead, buffer } = await handle.read(Buffer.alloc(8), 0, 8, 0);
      expect(buffer.subarray(0, bytesRead).toString()).toBe('contents');

      daemon.process.kill('SIGTERM');
      const exit = await waitForExit(daemon, 15_000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(await isMounted(daemon.mountpoint)).toBe(false);
      expect(daemon.logLines().some((line) => line.msg === 'unmounted')).toBe(true);
    } finally {
      // The daemon is gone, so closing may fail; only the descriptor needs to be released.
      await handle.close().catch(() => undefined);
    }
    expect((await stat(daemon.mountpoint)).isDirectory()).toBe(true);
  });

  it('debug log contains no credentials', async () => {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as { appKey: string };
    const tokenResponse = await fetch(`${emulator.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: REFRESH_TOKEN,
        client_id: config.appKey,
        client_secret: APP_SECRET,
      }).toString(),
    });
    expect(tokenResponse.status).toBe(200);
    const accessToken = ((await tokenResponse.json()) as { access_token: string }).access_token;
    expect(accessToken).toMatch(ACCESS_TOKEN_SHAPE);

    const mountpoint = await newMountpoint();
    const daemon = await mountDaemon(mountpoint, ['--log-level', 'debug', '--no-prefetch']);
    const root = daemon.mountpoint;

    const listed = await run('ls', ['-l', root, path.join(root, 'folder')]);
    expect(listed.code, listed.stderr).toBe(0);
    const statted = await run('stat', [path.join(root, 'four.txt')]);
    expect(statted.code, statted.stderr).toBe(0);
    const read = await run('cat', [path.join(root, 'folder', 'inner.txt')]);
    expect(read.stdout).toBe('inner file\n');

    // One rejected access token: the daemon refreshes it and the read succeeds.
    await postJson(`${emulator.url}/_emulator/faults`, { route: 'files/download', fault: 'expired-token', times: 1 });
    const refreshed = await run('cat', [path.join(root, 'one.txt')]);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect(refreshed.stdout).toBe('contents of one.txt\n');

    // Every token rejected: the read fails with EIO after one refresh.
    await postJson(`${emulator.url}/_emulator/faults`, { route: 'files/download', fault: 'expired-token', times: 20 });
    const rejected = await run('cat', [path.join(root, 'two.txt')]);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('Input/output error');

    await daemon.stop();
    const tokenCalls = (await emulator.calls()).filter((call) => call.route === 'oauth2/token');
    // The first token, the one this test asked for, and at least one refresh per fault.
    expect(tokenCalls.length).toBeGreaterThanOrEqual(4);

    const log = daemon.stderr();
    expect(log).toContain('"msg":"http"');
    expect(log).not.toContain(REFRESH_TOKEN);
    expect(log).not.toContain(APP_SECRET);
    expect(log).not.toContain(accessToken);
    expect(log).not.toMatch(ACCESS_TOKEN_SHAPE);
    expect(log.toLowerCase()).not.toContain('bearer ');
  });
});
