// Option values and messages at the edges: an --op-timeout above Node's timer limit, a
// non-numeric --cache-entries, and the advice printed for a rejected refresh token.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  type EmulatorProcess,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping option edge tests: ${fuse.reason}`);

describe.skipIf(!fuse.ok)('option edge values', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let configFile: string;
  let emulator: EmulatorProcess;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-breaker-options-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(path.join(source, 'sub'), { recursive: true });
    await mkdir(mountpoint);
    await writeFile(path.join(source, 'sub', 'hello.txt'), 'hello\n');
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
  });

  afterAll(async () => {
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  // 2,200,000 s is about 25 days. Node's setTimeout clamps any delay above 2^31 - 1 ms
  // (about 24.8 days) to 1 ms, so the op deadline fires at once and ops fail with EIO.
  it('large --op-timeout still serves reads', async () => {
    const daemon = await spawnDaemon({
      mountpoint,
      config: configFile,
      extraArgs: ['--op-timeout', '2200000'],
    });
    try {
      const ls = await run('ls', [mountpoint]);
      expect(ls.stderr).toBe('');
      expect(ls.code).toBe(0);
      expect(ls.stdout).toBe('sub\n');

      const cat = await run('cat', [path.join(mountpoint, 'sub', 'hello.txt')]);
      expect(cat.stderr).toBe('');
      expect(cat.stdout).toBe('hello\n');
    } finally {
      await daemon.stop();
    }
  });

  it('non-numeric --cache-entries exits 2 naming it', async () => {
    const result = await run('node', [
      CLI_PATH,
      mountpoint,
      '--config',
      configFile,
      '--cache-entries',
      'many',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--cache-entries');
    expect(await isMounted(mountpoint)).toBe(false);
  });

  it('rejected refresh token advice names a real command', async () => {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    config.refreshToken = 'not-the-emulator-refresh-token';
    const badConfig = path.join(workDir, 'wrong-token.json');
    await writeFile(badConfig, JSON.stringify(config), { mode: 0o600 });

    const result = await run('node', [CLI_PATH, mountpoint, '--config', badConfig]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('invalid_grant');

    const help = await run('node', [CLI_PATH, '--help']);
    const advised = /`dropbox-mount (\w+)/.exec(result.stderr)?.[1];
    if (advised !== undefined) {
      // The advice may only name a subcommand that --help lists.
      expect(help.stdout).toContain(`dropbox-mount ${advised}`);
    }
  });
});
