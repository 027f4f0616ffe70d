// Attributes that tools such as tar, rsync and file managers read: the mtime of a file dated
// before 1970, and whether access(2) reports files of a read-only mount as writable.

import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
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
if (!fuse.ok) console.warn(`skipping attribute tests: ${fuse.reason}`);

// 1960-01-01T00:00:00Z in seconds.
const BEFORE_EPOCH_SECONDS = -315_619_200;

describe.skipIf(!fuse.ok)('file attributes', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-breaker-attrs-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(source);
    await mkdir(mountpoint);
    await writeFile(path.join(source, 'old.txt'), 'old\n');
    // A Date, because Node replaces a negative number of seconds with the current time.
    const before = new Date(BEFORE_EPOCH_SECONDS * 1000);
    await utimes(path.join(source, 'old.txt'), before, before);
    await writeFile(path.join(source, 'plain.txt'), 'plain\n');

    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--read-only'] });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  // fuse-native packs times as unsigned 64-bit milliseconds, so a negative time comes out as a
  // date about 584 million years ahead. Any value at or before the epoch is acceptable here.
  it('mtime before 1970 is not in the far future', async () => {
    const result = await run('stat', ['-c', '%Y', path.join(mountpoint, 'old.txt')]);
    expect(result.code, result.stderr).toBe(0);
    const mtime = Number(result.stdout.trim());
    expect(mtime).toBeLessThanOrEqual(0);
    expect(mtime).toBeGreaterThanOrEqual(BEFORE_EPOCH_SECONDS);
  });

  // The mount is rw in the kernel's eyes and implements no access op, so access(W_OK) succeeds
  // although every write fails with EROFS. `test -w` and file managers then offer to write.
  it('access W_OK fails on a file', async () => {
    const result = await run('test', ['-w', path.join(mountpoint, 'plain.txt')]);
    expect(result.code).toBe(1);
  });

  it('access W_OK fails on a folder', async () => {
    const result = await run('test', ['-w', mountpoint]);
    expect(result.code).toBe(1);
  });
});
