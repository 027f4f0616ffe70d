// The write path driven by ordinary tools on a real mount: cp -r, cp of a 400 MB file, sed -i,
// an editor's save-by-rename, git, parallel dd and rsync. Each test checks the bytes through the
// mount and in the emulator's data folder, which contains what Dropbox stores, and some count the
// API calls in the emulator's call log. Errors and edge cases are in writes-semantics.test.ts.

import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SESSION_CHUNK_BYTES } from '../../src/write/upload.js';
import { fuseAvailable, run } from '../helpers/processes.js';
import { SeededRandom, mtimeSeconds } from '../helpers/tree.js';
import { countRoute, startWriteMount, type WriteMount } from '../helpers/write-mount.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping write-path mount tests: ${fuse.reason}`);

const TREE_FILE_COUNT = 1_000;
const LARGE_FILE_BYTES = 400_000_000;
const C_LOCALE_ENV = { ...process.env, LC_ALL: 'C' };

// Folders of the generated tree: nested ones, and names with spaces and accents (NFC).
const TREE_FOLDERS = [
  '',
  'docs',
  'docs/deep/deeper/deepest',
  'with spaces/inner folder',
  'accents/Répertoire été'.normalize('NFC'),
  'many',
];

/**
 * Writes `count` files of 0 to 20,000 bytes under `root`, spread over TREE_FOLDERS. Every
 * seventh name has spaces and every eleventh accents.
 */
async function writeSmallTree(root: string, count: number): Promise<void> {
  const random = new SeededRandom(7);
  for (let i = 0; i < count; i++) {
    const folder = TREE_FOLDERS[i % TREE_FOLDERS.length] as string;
    let name = `file-${String(i).padStart(4, '0')}.bin`;
    if (i % 7 === 0) name = `file ${i} with spaces.txt`;
    if (i % 11 === 0) name = `crème brûlée ${i}.txt`.normalize('NFC');
    const size = random.nextUint32() % 20_001;
    const bytes = Buffer.alloc(size);
    random.fill(bytes);
    await mkdir(path.join(root, folder), { recursive: true });
    await writeFile(path.join(root, folder, name), bytes);
  }
}

describe.skipIf(!fuse.ok)('write path with ordinary tools', () => {
  let mount: WriteMount;
  let scratch: string;

  beforeAll(async () => {
    mount = await startWriteMount('dropbox-mount-writes-', async (data) => {
      await mkdir(path.join(data, 'edit'));
      await writeFile(path.join(data, 'edit', 'sed.txt'), 'alpha\nbeta\ngamma\n');
      await writeFile(path.join(data, 'edit', 'notes.txt'), 'first draft\n');
    });
    scratch = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-writes-src-'));
  });

  afterAll(async () => {
    await mount?.close();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it('cp -r of 1,000 files matches', async () => {
    const source = path.join(scratch, 'tree');
    await writeSmallTree(source, TREE_FILE_COUNT);
    await mount.emulator.clearCalls();

    const copy = await run('cp', ['-r', source, path.join(mount.mountpoint, 'tree')], { timeoutMs: 120_000 });
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);

    const throughMount = await run('diff', ['-r', source, path.join(mount.mountpoint, 'tree')], { timeoutMs: 60_000 });
    expect(throughMount.stdout).toBe('');
    expect(throughMount.code).toBe(0);
    const inData = await run('diff', ['-r', source, path.join(mount.data, 'tree')], { timeoutMs: 60_000 });
    expect(inData.stdout).toBe('');
    expect(inData.code).toBe(0);

    // Every file is under 16 MiB, so each costs one files/upload and no session.
    const calls = await mount.emulator.calls();
    expect(countRoute(calls, 'files/upload')).toBe(TREE_FILE_COUNT);
    expect(countRoute(calls, 'files/upload_session/start')).toBe(0);
    // The tree root plus the folders of TREE_FOLDERS and their parents.
    expect(countRoute(calls, 'files/create_folder_v2')).toBe(10);
  }, 150_000);

  it('400 MB file goes through upload sessions', async () => {
    const source = path.join(scratch, 'large.bin');
    const generate = await run('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1000000', `count=${LARGE_FILE_BYTES / 1_000_000}`]);
    expect(generate.code, generate.stderr).toBe(0);
    await mkdir(path.join(mount.mountpoint, 'large'));
    await mount.emulator.clearCalls();

    const target = path.join(mount.mountpoint, 'large', 'large.bin');
    const copy = await run('cp', [source, target], { timeoutMs: 180_000 });
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);

    const calls = await mount.emulator.calls();
    expect(countRoute(calls, 'files/upload')).toBe(0);
    expect(countRoute(calls, 'files/upload_session/start')).toBe(1);
    // The start and each append carry one 16 MiB chunk, and finish carries the rest.
    const chunks = Math.ceil(LARGE_FILE_BYTES / SESSION_CHUNK_BYTES);
    expect(countRoute(calls, 'files/upload_session/append_v2')).toBe(chunks - 2);
    expect(countRoute(calls, 'files/upload_session/finish')).toBe(1);

    const readBack = await run('cmp', [source, target], { timeoutMs: 180_000 });
    expect(readBack.stdout + readBack.stderr).toBe('');
    expect(readBack.code).toBe(0);
    const inData = await run('cmp', [source, path.join(mount.data, 'large', 'large.bin')], { timeoutMs: 60_000 });
    expect(inData.stdout + inData.stderr).toBe('');
    expect(inData.code).toBe(0);
    await rm(source);
  }, 300_000);

  it('sed -i edits in place', async () => {
    const result = await run('sed', ['-i', 's/beta/BETA/', path.join(mount.mountpoint, 'edit', 'sed.txt')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    expect(await readFile(path.join(mount.data, 'edit', 'sed.txt'), 'utf8')).toBe('alpha\nBETA\ngamma\n');
    const cat = await run('cat', [path.join(mount.mountpoint, 'edit', 'sed.txt')]);
    expect(cat.stdout).toBe('alpha\nBETA\ngamma\n');
    // sed writes a temporary file beside the original and renames it over the original.
    expect((await readdir(path.join(mount.data, 'edit'))).sort()).toEqual(['notes.txt', 'sed.txt']);
  });

  it('swap file renamed over original', async () => {
    const folder = path.join(mount.mountpoint, 'edit');
    await mount.emulator.clearCalls();
    const save = await run('sh', ['-c', 'printf "second draft\\n" > .notes.txt.swp && mv .notes.txt.swp notes.txt'], { cwd: folder });
    expect(save.stderr).toBe('');
    expect(save.code).toBe(0);

    expect(await readFile(path.join(mount.data, 'edit', 'notes.txt'), 'utf8')).toBe('second draft\n');
    const cat = await run('cat', [path.join(folder, 'notes.txt')]);
    expect(cat.stdout).toBe('second draft\n');
    expect((await readdir(path.join(mount.data, 'edit'))).sort()).toEqual(['notes.txt', 'sed.txt']);
    expect((await readdir(folder)).sort()).toEqual(['notes.txt', 'sed.txt']);

    // Dropbox has no atomic replace: the old notes.txt is deleted, then the swap file moved.
    const calls = await mount.emulator.calls();
    expect(countRoute(calls, 'files/upload')).toBe(1);
    expect(countRoute(calls, 'files/delete_v2')).toBe(1);
    expect(countRoute(calls, 'files/move_v2')).toBe(1);
  });

  it('git init, add, commit and fsck', async () => {
    const repo = path.join(mount.mountpoint, 'repo');
    const gitEnv = {
      ...C_LOCALE_ENV,
      HOME: scratch,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test Author',
      GIT_AUTHOR_EMAIL: 'author@example.invalid',
      GIT_COMMITTER_NAME: 'Test Author',
      GIT_COMMITTER_EMAIL: 'author@example.invalid',
    };
    const git = (args: string[], cwd = repo) => run('git', args, { cwd, env: gitEnv, timeoutMs: 60_000 });

    await mkdir(repo);
    const init = await git(['init', '-q', '-b', 'main']);
    expect(init.code, init.stderr).toBe(0);
    await writeFile(path.join(repo, 'README.md'), '# test repository\n');
    await mkdir(path.join(repo, 'src'));
    await writeFile(path.join(repo, 'src', 'main.txt'), 'main\n'.repeat(1_000));
    const add = await git(['add', '.']);
    expect(add.code, add.stderr).toBe(0);
    const commit = await git(['commit', '-q', '-m', 'first commit']);
    expect(commit.code, commit.stderr).toBe(0);

    const log = await git(['log', '--format=%s']);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toBe('first commit\n');
    const fsck = await git(['fsck', '--full', '--strict']);
    expect(fsck.stderr).toBe('');
    expect(fsck.code).toBe(0);

    // The data folder contains a working repository with the same commit.
    const dataRepo = path.join(mount.data, 'repo');
    const dataFsck = await git(['fsck', '--full', '--strict'], dataRepo);
    expect(dataFsck.stderr).toBe('');
    expect(dataFsck.code).toBe(0);
    const dataLog = await git(['log', '--format=%s'], dataRepo);
    expect(dataLog.stdout).toBe('first commit\n');
    const status = await git(['status', '--porcelain'], dataRepo);
    expect(status.stdout).toBe('');
  }, 120_000);

  it('two dd writers in parallel', async () => {
    const sizes = { 'first.bin': 20 * 1024 * 1024, 'second.bin': 24 * 1024 * 1024 + 123 };
    const sources: Record<string, string> = {};
    for (const [name, size] of Object.entries(sizes)) {
      sources[name] = path.join(scratch, name);
      const bytes = Buffer.alloc(size);
      new SeededRandom(size).fill(bytes);
      await writeFile(sources[name] as string, bytes);
    }
    await mkdir(path.join(mount.mountpoint, 'parallel'));

    const writers = Object.keys(sizes).map((name) =>
      run('dd', [`if=${sources[name]}`, `of=${path.join(mount.mountpoint, 'parallel', name)}`, 'bs=1M'], { timeoutMs: 120_000 }),
    );
    const results = await Promise.all(writers);
    for (const result of results) expect(result.code, result.stderr).toBe(0);

    for (const name of Object.keys(sizes)) {
      const throughMount = await run('cmp', [sources[name] as string, path.join(mount.mountpoint, 'parallel', name)]);
      expect(throughMount.stdout + throughMount.stderr).toBe('');
      expect(throughMount.code).toBe(0);
      const inData = await run('cmp', [sources[name] as string, path.join(mount.data, 'parallel', name)]);
      expect(inData.stdout + inData.stderr).toBe('');
      expect(inData.code).toBe(0);
    }
  }, 150_000);

  it('dd conv=notrunc into a large file', async () => {
    // Changes 1 MiB in the middle of the 24 MiB file from the parallel test, in place.
    const local = path.join(scratch, 'second.bin');
    const patch = path.join(scratch, 'patch.bin');
    const patchBytes = Buffer.alloc(1024 * 1024, 0x5a);
    await writeFile(patch, patchBytes);
    const ddArgs = (target: string) => [`if=${patch}`, `of=${target}`, 'bs=1M', 'seek=10', 'conv=notrunc'];
    const localPatch = await run('dd', ddArgs(local));
    expect(localPatch.code, localPatch.stderr).toBe(0);
    await mount.emulator.clearCalls();

    const target = path.join(mount.mountpoint, 'parallel', 'second.bin');
    const mountPatch = await run('dd', ddArgs(target), { timeoutMs: 60_000 });
    expect(mountPatch.code, mountPatch.stderr).toBe(0);

    const calls = await mount.emulator.calls();
    expect(countRoute(calls, 'files/upload')).toBe(0);
    expect(countRoute(calls, 'files/upload_session/finish')).toBe(1);
    const throughMount = await run('cmp', [local, target]);
    expect(throughMount.stdout + throughMount.stderr).toBe('');
    expect(throughMount.code).toBe(0);
    const inData = await run('cmp', [local, path.join(mount.data, 'parallel', 'second.bin')]);
    expect(inData.stdout + inData.stderr).toBe('');
    expect(inData.code).toBe(0);
  }, 120_000);

  it('rsync -a twice transfers nothing', async () => {
    const source = path.join(scratch, 'rsync-src');
    await writeSmallTree(source, 60);
    // Whole-second mtimes in the past, different for each file.
    const files = (await readdir(source, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    let mtime = 1_600_000_000;
    for (const entry of files) {
      mtime += 3_607;
      await utimes(path.join(entry.parentPath, entry.name), mtime, mtime);
    }
    const target = path.join(mount.mountpoint, 'rsync-dst');

    const first = await run('rsync', ['-a', '--stats', `${source}/`, `${target}/`], { timeoutMs: 120_000 });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Number of regular files transferred: ${files.length}`);
    const second = await run('rsync', ['-a', '--stats', `${source}/`, `${target}/`], { timeoutMs: 120_000 });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Number of regular files transferred: 0');

    const inData = await run('diff', ['-r', source, path.join(mount.data, 'rsync-dst')]);
    expect(inData.stdout).toBe('');
    expect(inData.code).toBe(0);
    for (const entry of files) {
      const relative = path.relative(source, path.join(entry.parentPath, entry.name));
      const expected = await mtimeSeconds(path.join(source, relative));
      const statMtime = await run('stat', ['-c', '%Y', path.join(target, relative)]);
      expect(Number(statMtime.stdout.trim()), relative).toBe(expected);
    }
  }, 150_000);
});
