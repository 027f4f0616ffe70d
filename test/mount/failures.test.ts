// What the daemon does with bad input and a lost server: bad config and a missing mountpoint exit
// 2 with a message naming the value; with the emulator stopped, reads fail with EIO in bounded
// time; and once the emulator is back on the same port, the same mount serves again.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CLI_PATH,
  fuseAvailable,
  isMounted,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping mount failure tests: ${fuse.reason}`);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('daemon input errors', () => {
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-input-'));
    await mkdir(path.join(workDir, 'mnt'));
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('bad config exits 2 naming the field', async () => {
    const config = path.join(workDir, 'bad.json');
    await writeFile(config, JSON.stringify({ appKey: 'k', appSecret: 'do-not-print-me' }), { mode: 0o600 });
    const result = await run('node', [CLI_PATH, path.join(workDir, 'mnt'), '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('missing field "refreshToken"');
    expect(result.stderr).not.toContain('do-not-print-me');
    expect(await isMounted(path.join(workDir, 'mnt'))).toBe(false);
  });

  it('missing mountpoint exits 2 with the fix', async () => {
    const config = path.join(workDir, 'ok.json');
    await writeFile(config, JSON.stringify({ appKey: 'k', refreshToken: 't' }), { mode: 0o600 });
    const missing = path.join(workDir, 'no-such-dir');
    const result = await run('node', [CLI_PATH, missing, '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`mountpoint ${missing} does not exist`);
    expect(result.stderr).toContain(`mkdir -p ${missing}`);
  });

  it('invalid option value exits 2 naming it', async () => {
    const config = path.join(workDir, 'ok.json');
    await writeFile(config, JSON.stringify({ appKey: 'k', refreshToken: 't' }), { mode: 0o600 });
    const result = await run('node', [
      CLI_PATH,
      path.join(workDir, 'mnt'),
      '--config',
      config,
      '--file-mode',
      '999',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--file-mode value "999"');
  });

  it('--help lists options with units', async () => {
    const result = await run('node', [CLI_PATH, '--help']);
    expect(result.code).toBe(0);
    for (const option of ['--config', '--root', '--request-timeout', '--op-timeout', '--dir-cache-time']) {
      expect(result.stdout).toContain(option);
    }
    expect(result.stdout).toMatch(/--request-timeout\s+Seconds/);
  });
});

describe.skipIf(!fuse.ok)('mount with the emulator stopped', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let configFile: string;
  let port: number;
  let emulator: EmulatorProcess | undefined;
  let daemon: DaemonProcess;
  // Fixed credentials, so that the restarted emulator accepts the daemon's refresh token.
  const credentials = ['--app-secret', 'failure-test-secret', '--refresh-token', 'failure-test-refresh'];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-down-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(path.join(source, 'later'), { recursive: true });
    await mkdir(mountpoint);
    await writeFile(path.join(source, 'first.txt'), 'first file\n');
    await writeFile(path.join(source, 'second.txt'), 'second file\n');
    await writeFile(path.join(source, 'later', 'inner.txt'), 'inner file\n');
    port = await freePort();
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, port, configFile, extraArgs: credentials });
    daemon = await spawnDaemon({
      mountpoint,
      config: configFile,
      // Without the prefetch, `ls later` must ask the server, which this test needs to be down.
      extraArgs: ['--request-timeout', '5', '--no-prefetch'],
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('reads fail with EIO while it is down', async () => {
    const listed = await run('ls', [mountpoint]);
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual(['first.txt', 'later', 'second.txt']);
    await emulator?.stop();
    emulator = undefined;

    const started = Date.now();
    const cat = await run('cat', [path.join(mountpoint, 'second.txt')], { timeoutMs: 30_000 });
    expect(cat.timedOut).toBe(false);
    expect(cat.code).not.toBe(0);
    expect(cat.stderr).toContain('Input/output error');
    const ls = await run('ls', [path.join(mountpoint, 'later')], { timeoutMs: 30_000 });
    expect(ls.code).not.toBe(0);
    expect(ls.stderr).toContain('Input/output error');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('serves again once it is back', async () => {
    emulator = await spawnEmulator({ dataDir: source, port, extraArgs: credentials });
    expect(await readFile(path.join(mountpoint, 'second.txt'), 'utf8')).toBe('second file\n');
    const cat = await run('cat', [path.join(mountpoint, 'later', 'inner.txt')]);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout).toBe('inner file\n');
  });
});
