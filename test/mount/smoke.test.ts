// First end-to-end check: a small tree served by the emulator, mounted by the daemon, and read
// back with ordinary command-line tools. Commands run as child processes, never in this
// process's event loop, because this process must keep draining the daemon's stderr.

import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  fuseAvailable,
  isMounted,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
} from '../helpers/processes.js';
import {
  SMALL_TREE_SPEC,
  TREE_PATHS,
  listTree,
  makeTree,
  mtimeSeconds,
  sha256File,
  type TreeEntry,
} from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping mount smoke tests: ${fuse.reason}`);

// C collation, so that `ls` and `find` sort the same way on both sides.
const C_LOCALE_ENV = { ...process.env, LC_ALL: 'C' };

describe.skipIf(!fuse.ok)('mount smoke', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  let sourceEntries: TreeEntry[];
  let sourceFiles: TreeEntry[];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-smoke-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await makeTree(source, SMALL_TREE_SPEC);
    await mkdir(mountpoint);
    sourceEntries = await listTree(source);
    sourceFiles = sourceEntries.filter((entry) => entry.kind === 'file');

    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--read-only'] });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('lists the same tree', async () => {
    expect(await listTree(mountpoint)).toEqual(sourceEntries);
  });

  it('ls prints the same names', async () => {
    for (const folder of ['', 'names', TREE_PATHS.wideFolder, 'sizes']) {
      const expected = await run('ls', ['-1A', path.join(source, folder)], { env: C_LOCALE_ENV });
      const actual = await run('ls', ['-1A', path.join(mountpoint, folder)], { env: C_LOCALE_ENV });
      expect(actual.code, actual.stderr).toBe(0);
      expect(actual.stdout).toBe(expected.stdout);
    }
  });

  it('find prints the same paths', async () => {
    const expected = await run('find', ['.'], { cwd: source, env: C_LOCALE_ENV });
    const actual = await run('find', ['.'], { cwd: mountpoint, env: C_LOCALE_ENV });
    expect(actual.code, actual.stderr).toBe(0);
    const sortLines = (text: string): string[] => text.split('\n').filter(Boolean).sort();
    expect(sortLines(actual.stdout)).toEqual(sortLines(expected.stdout));
  });

  it('readdir returns NFC names', async () => {
    for (const relativePath of [TREE_PATHS.spaces, TREE_PATHS.accents, TREE_PATHS.emoji]) {
      const names = await readdir(path.dirname(path.join(mountpoint, relativePath)));
      expect(names).toContain(path.basename(relativePath));
    }
  });

  // The stat checks run before any read: the kernel shrinks a file's cached size when a read
  // comes back short, which would hide a wrong size reported by getattr.
  it('stat reports exact sizes', async () => {
    for (const file of sourceFiles) {
      const result = await run('stat', ['-c', '%s', path.join(mountpoint, file.path)]);
      expect(result.code, result.stderr).toBe(0);
      expect(Number(result.stdout.trim()), file.path).toBe(file.size);
    }
  });

  it('stat reports read-only modes', async () => {
    for (const entry of sourceEntries) {
      const result = await run('stat', ['-c', '%a', path.join(mountpoint, entry.path)]);
      expect(result.code, result.stderr).toBe(0);
      const expectedMode = entry.kind === 'dir' ? '555' : '444';
      expect(result.stdout.trim(), entry.path).toBe(expectedMode);
    }
    const root = await run('stat', ['-c', '%a', mountpoint]);
    expect(root.stdout.trim()).toBe('555');
  });

  it('stat reports file mtimes', async () => {
    for (const file of sourceFiles) {
      const result = await run('stat', ['-c', '%Y', path.join(mountpoint, file.path)]);
      expect(result.code, result.stderr).toBe(0);
      const expected = await mtimeSeconds(path.join(source, file.path));
      expect(Number(result.stdout.trim()), file.path).toBe(expected);
    }
  });

  it('cat prints the same bytes', async () => {
    for (const relativePath of [TREE_PATHS.accents, TREE_PATHS.emoji, 'sizes/4097.bin']) {
      const result = await run('cat', [path.join(mountpoint, relativePath)]);
      expect(result.code, result.stderr).toBe(0);
      const expected = await readFile(path.join(source, relativePath));
      expect(result.stdoutBytes.equals(expected), relativePath).toBe(true);
    }
  });

  it('cat of the empty file prints nothing', async () => {
    const result = await run('cat', [path.join(mountpoint, TREE_PATHS.empty)]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdoutBytes.length).toBe(0);
  });

  it('cmp finds every file equal', async () => {
    for (const file of sourceFiles) {
      const result = await run('cmp', [
        path.join(source, file.path),
        path.join(mountpoint, file.path),
      ]);
      expect(result.code, `${file.path}: ${result.stdout}${result.stderr}`).toBe(0);
    }
  });

  it('sha256sum matches the source', async () => {
    const relativePaths = [TREE_PATHS.large, TREE_PATHS.empty, TREE_PATHS.emoji];
    const result = await run('sha256sum', relativePaths, { cwd: mountpoint, timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);

    const expectedLines: string[] = [];
    for (const relativePath of relativePaths) {
      expectedLines.push(`${await sha256File(path.join(source, relativePath))}  ${relativePath}`);
    }
    expect(result.stdout).toBe(`${expectedLines.join('\n')}\n`);
  });

  it('touch fails with EROFS', async () => {
    const target = path.join(mountpoint, 'x');
    const result = await run('touch', [target]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Read-only file system');
    expect(await readdir(mountpoint)).not.toContain('x');
  });

  it('daemon unmounts on SIGTERM', async () => {
    const status = await daemon.stop();
    expect(status.code).toBe(0);
    expect(await isMounted(daemon.mountpoint)).toBe(false);
    const log = daemon.stderr();
    expect(log).toContain('"msg":"mounted"');
  });
});
