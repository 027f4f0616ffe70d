// A real tree of several thousand files (a copy of /usr/share/doc plus generated cases: a 105 MiB
// file, an empty file, names with spaces, accents and emoji, a folder of 2,000 entries) served
// through the emulator and compared with ordinary tools. The call log of the emulator shows what
// each step cost in API calls.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
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
import { FULL_TREE_SPEC, TREE_PATHS, makeTree, sha256File } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping real-tree mount tests: ${fuse.reason}`);

const C_LOCALE_ENV = { ...process.env, LC_ALL: 'C' };

describe.skipIf(!fuse.ok)('real tree through the mount', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  let fileCount = 0;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-real-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    fileCount = (await makeTree(source, FULL_TREE_SPEC)).fileCount;
    await mkdir(mountpoint);
    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile });
  }, 180_000);

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('tree has several thousand files', () => {
    expect(fileCount).toBeGreaterThan(3000);
  });

  it('ls -l of 2,000 entries makes no get_metadata call', async () => {
    await emulator.clearCalls();
    const listing = await run('ls', ['-l', path.join(mountpoint, TREE_PATHS.wideFolder)], {
      env: C_LOCALE_ENV,
    });
    expect(listing.code, listing.stderr).toBe(0);
    const fileLines = listing.stdout.split('\n').filter((line) => line.startsWith('-'));
    expect(fileLines).toHaveLength(FULL_TREE_SPEC.wideFolderEntries);
    expect(fileLines.every((line) => line.startsWith('-rw-r--r--'))).toBe(true);
    const calls = await emulator.calls();
    expect(calls.filter((call) => call.route === 'files/get_metadata')).toHaveLength(0);
    const listCalls = calls.filter((call) => call.route.startsWith('files/list_folder'));
    expect(listCalls.length).toBeGreaterThanOrEqual(1);
    expect(listCalls.length).toBeLessThanOrEqual(3);
  });

  it('cat of the 105 MiB file makes at most 4 downloads', async () => {
    await emulator.clearCalls();
    const large = path.join(mountpoint, TREE_PATHS.large);
    const result = await run('sh', ['-c', 'cat "$1" | sha256sum', 'sh', large], { timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    const expected = await sha256File(path.join(source, TREE_PATHS.large));
    expect(result.stdout.split(' ')[0]).toBe(expected);
    const downloads = (await emulator.calls()).filter((call) => call.route === 'files/download');
    expect(downloads.length).toBeGreaterThanOrEqual(1);
    expect(downloads.length).toBeLessThanOrEqual(4);
  });

  it('diff -r finds no difference', async () => {
    const result = await run('diff', ['-r', source, mountpoint], { timeoutMs: 300_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('');
    expect(result.code).toBe(0);
  }, 300_000);

  it('tar of the mount extracts to the same tree', async () => {
    const extracted = path.join(workDir, 'extracted');
    await mkdir(extracted);
    const result = await run(
      'sh',
      ['-c', 'tar -cf - -C "$1" . | tar -xf - -C "$2"', 'sh', mountpoint, extracted],
      { timeoutMs: 300_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    const diff = await run('diff', ['-r', source, extracted], { timeoutMs: 120_000 });
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
  }, 300_000);

  it('find prints the same paths', async () => {
    const expected = await run('find', ['.', '-printf', '%y %s %P\\n'], { cwd: source, env: C_LOCALE_ENV });
    const actual = await run('find', ['.', '-printf', '%y %s %P\\n'], { cwd: mountpoint, env: C_LOCALE_ENV });
    expect(actual.code, actual.stderr).toBe(0);
    // Folder sizes differ by design (the mount reports 0), so compare files and folder names.
    const normalize = (text: string) =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => (line.startsWith('d ') ? line.replace(/^d \d+ /, 'd ') : line))
        .sort();
    expect(normalize(actual.stdout)).toEqual(normalize(expected.stdout));
  });
});
