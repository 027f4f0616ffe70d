// Unmounting must work for any mountpoint name the kernel accepts. fuse-native unmounts by
// running `fusermount -uz "<path>"` through a shell, which expands `$`, backticks and `\` in
// the path. The wrong path is then unmounted (or a command in the name runs), and the real
// mount stays behind after SIGTERM.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  fuseAvailable,
  isMounted,
  run,
  spawnDaemon,
  spawnEmulator,
  type EmulatorProcess,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping mountpoint name tests: ${fuse.reason}`);

describe.skipIf(!fuse.ok)('mountpoint names with shell characters', () => {
  let workDir: string;
  let source: string;
  let configFile: string;
  let emulator: EmulatorProcess;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-breaker-name-'));
    source = path.join(workDir, 'data');
    await mkdir(source);
    await writeFile(path.join(source, 'hello.txt'), 'hello\n');
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
  });

  afterAll(async () => {
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  // `$1` expands to nothing in the shell, and a backtick pair runs an empty command.
  for (const name of ['mnt-$1-dollar', 'mnt-`true`-backtick']) {
    it(`SIGTERM unmounts ${name}`, async () => {
      const mountpoint = path.join(workDir, name);
      await mkdir(mountpoint);
      const daemon = await spawnDaemon({ mountpoint, config: configFile });

      const cat = await run('cat', [path.join(mountpoint, 'hello.txt')]);
      expect(cat.stdout).toBe('hello\n');

      // daemon.stop() runs `fusermount -uz` itself afterwards, so the exit status and the log
      // are what tell whether the daemon unmounted on its own.
      const status = await daemon.stop();
      expect(daemon.stderr()).not.toContain('unmount failed');
      expect(status.code).toBe(0);
      expect(await isMounted(daemon.mountpoint)).toBe(false);
    });
  }
});
