import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { run } from '../helpers/processes.js';
import {
  SMALL_TREE_SPEC,
  SeededRandom,
  TREE_PATHS,
  listTree,
  makeTree,
  mtimeSeconds,
  sha256File,
  type TreeSpec,
  type TreeSummary,
} from '../helpers/tree.js';

const NO_DOCS_SPEC: TreeSpec = { ...SMALL_TREE_SPEC, docs: null };

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-tree-'));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function hashAll(root: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const entry of await listTree(root)) {
    if (entry.kind !== 'file') continue;
    hashes.set(entry.path, await sha256File(path.join(root, entry.path)));
  }
  return hashes;
}

describe('SeededRandom', () => {
  it('repeats the sequence for one seed', () => {
    const first = Buffer.alloc(37);
    const second = Buffer.alloc(37);
    new SeededRandom(42).fill(first);
    new SeededRandom(42).fill(second);
    expect(first.equals(second)).toBe(true);
  });

  it('differs between seeds', () => {
    const first = Buffer.alloc(32);
    const second = Buffer.alloc(32);
    new SeededRandom(1).fill(first);
    new SeededRandom(2).fill(second);
    expect(first.equals(second)).toBe(false);
  });

  it('produces nonzero output from seed zero', () => {
    const buffer = Buffer.alloc(16);
    new SeededRandom(0).fill(buffer);
    expect(buffer.some((byte) => byte !== 0)).toBe(true);
  });
});

describe('makeTree small variant', () => {
  let root: string;
  let summary: TreeSummary;

  beforeAll(async () => {
    root = path.join(workDir, 'small');
    summary = await makeTree(root, SMALL_TREE_SPEC);
  });

  it('creates the empty file', async () => {
    const info = await lstat(path.join(root, TREE_PATHS.empty));
    expect(info.isFile()).toBe(true);
    expect(info.size).toBe(0);
  });

  it('creates the large file at its exact size', async () => {
    const info = await lstat(path.join(root, TREE_PATHS.large));
    expect(info.size).toBe(SMALL_TREE_SPEC.largeFileBytes);
  });

  it('fills the wide folder', async () => {
    const names = await readdir(path.join(root, TREE_PATHS.wideFolder));
    expect(names).toHaveLength(SMALL_TREE_SPEC.wideFolderEntries);
  });

  it('writes special names in NFC', async () => {
    for (const relativePath of [TREE_PATHS.spaces, TREE_PATHS.accents, TREE_PATHS.emoji]) {
      const folder = path.dirname(path.join(root, relativePath));
      const name = path.basename(relativePath);
      expect(await readdir(folder)).toContain(name);
      expect(name).toBe(name.normalize('NFC'));
    }
  });

  it('keeps accents precomposed on disk', async () => {
    const names = await readdir(path.dirname(path.join(root, TREE_PATHS.accents)));
    // U+00E8 (è) as one code point, not "e" followed by U+0300.
    expect(names.some((name) => name.includes('\u00e8'))).toBe(true);
    expect(names.some((name) => name.includes('e\u0300'))).toBe(false);
  });

  it('reaches the deep path', async () => {
    const text = await readFile(path.join(root, TREE_PATHS.deep), 'utf8');
    expect(text).toBe('six folders down\n');
  });

  it('sets whole-second mtimes', async () => {
    const info = await lstat(path.join(root, TREE_PATHS.large));
    expect(info.mtimeMs % 1000).toBe(0);
    expect(await mtimeSeconds(path.join(root, TREE_PATHS.large))).toBe(info.mtimeMs / 1000);
  });

  it('matches the summary counts', async () => {
    const files = (await listTree(root)).filter((entry) => entry.kind === 'file');
    expect(files).toHaveLength(summary.fileCount);
    const bytes = files.reduce((total, entry) => total + (entry.size ?? 0), 0);
    expect(bytes).toBe(summary.totalBytes);
  });

  it.skipIf(!existsSync('/usr/share/doc'))('copies up to maxFiles docs', async () => {
    const docs = (await listTree(root)).filter(
      (entry) => entry.kind === 'file' && entry.path.startsWith('docs/'),
    );
    expect(summary.docsCopied).toBeGreaterThan(0);
    expect(summary.docsCopied).toBeLessThanOrEqual(SMALL_TREE_SPEC.docs?.maxFiles ?? 0);
    expect(docs).toHaveLength(summary.docsCopied);
  });
});

describe('makeTree determinism', () => {
  it('builds identical trees from one spec', async () => {
    const first = path.join(workDir, 'same-1');
    const second = path.join(workDir, 'same-2');
    await makeTree(first, NO_DOCS_SPEC);
    await makeTree(second, NO_DOCS_SPEC);

    expect(await listTree(second)).toEqual(await listTree(first));
    expect(await hashAll(second)).toEqual(await hashAll(first));
    expect(await mtimeSeconds(path.join(second, TREE_PATHS.large))).toBe(
      await mtimeSeconds(path.join(first, TREE_PATHS.large)),
    );
  });

  it('changes contents with the seed', async () => {
    const first = path.join(workDir, 'seed-1');
    const second = path.join(workDir, 'seed-2');
    await makeTree(first, NO_DOCS_SPEC);
    await makeTree(second, { ...NO_DOCS_SPEC, seed: 2 });

    const firstHash = await sha256File(path.join(first, TREE_PATHS.large));
    const secondHash = await sha256File(path.join(second, TREE_PATHS.large));
    expect(secondHash).not.toBe(firstHash);
  });

  it('rejects a folder that already has the tree', async () => {
    const root = path.join(workDir, 'twice');
    await makeTree(root, NO_DOCS_SPEC);
    await expect(makeTree(root, NO_DOCS_SPEC)).rejects.toThrow(/EEXIST/);
  });
});

describe('makeTree docs copy', () => {
  let source: string;
  let root: string;
  let summary: TreeSummary;

  beforeAll(async () => {
    source = path.join(workDir, 'docs-source');
    await mkdir(path.join(source, 'pkg'), { recursive: true });
    await writeFile(path.join(source, 'pkg', 'README'), 'upper\n');
    await writeFile(path.join(source, 'pkg', 'readme'), 'lower\n');
    await writeFile(path.join(source, 'pkg', 'copyright'), 'text\n');
    await writeFile(path.join(source, 'zz-last'), 'last\n');
    await symlink('copyright', path.join(source, 'pkg', 'link'));
    await symlink('/nonexistent', path.join(source, 'pkg', 'dangling'));
    const fifo = await run('mkfifo', [path.join(source, 'pkg', 'fifo')]);
    expect(fifo.code).toBe(0);

    root = path.join(workDir, 'docs-copy');
    summary = await makeTree(root, { ...NO_DOCS_SPEC, docs: { sourceDir: source, maxFiles: 10 } });
  });

  it('skips symlinks and special files', async () => {
    const names = await readdir(path.join(root, 'docs', 'pkg'));
    expect(names).not.toContain('link');
    expect(names).not.toContain('dangling');
    expect(names).not.toContain('fifo');
  });

  it('skips case-insensitive duplicates', async () => {
    const names = await readdir(path.join(root, 'docs', 'pkg'));
    // Sorted by code unit, README comes before readme and wins.
    expect(names).toContain('README');
    expect(names).not.toContain('readme');
  });

  it('copies contents unchanged', async () => {
    const text = await readFile(path.join(root, 'docs', 'pkg', 'copyright'), 'utf8');
    expect(text).toBe('text\n');
    expect(summary.docsCopied).toBe(3);
  });

  it('stops at maxFiles', async () => {
    const capped = path.join(workDir, 'docs-capped');
    const cappedSummary = await makeTree(capped, {
      ...NO_DOCS_SPEC,
      docs: { sourceDir: source, maxFiles: 1 },
    });
    expect(cappedSummary.docsCopied).toBe(1);
    expect(await readdir(path.join(capped, 'docs', 'pkg'))).toEqual(['README']);
    expect(existsSync(path.join(capped, 'docs', 'zz-last'))).toBe(false);
  });

  it('tolerates a missing source folder', async () => {
    const missing = path.join(workDir, 'docs-missing');
    const missingSummary = await makeTree(missing, {
      ...NO_DOCS_SPEC,
      docs: { sourceDir: path.join(workDir, 'no-such-folder'), maxFiles: 5 },
    });
    expect(missingSummary.docsCopied).toBe(0);
  });
});

describe('listTree', () => {
  it('sorts paths and reports sizes', async () => {
    const root = path.join(workDir, 'list');
    await mkdir(path.join(root, 'b folder'), { recursive: true });
    await writeFile(path.join(root, 'b folder', 'inner.txt'), '12345');
    await writeFile(path.join(root, 'a.txt'), '');
    await writeFile(path.join(root, 'C.txt'), 'abc');

    expect(await listTree(root)).toEqual([
      { path: 'C.txt', kind: 'file', size: 3 },
      { path: 'a.txt', kind: 'file', size: 0 },
      { path: 'b folder', kind: 'dir', size: null },
      { path: 'b folder/inner.txt', kind: 'file', size: 5 },
    ]);
  });

  it('rejects symbolic links', async () => {
    const root = path.join(workDir, 'list-link');
    await mkdir(root);
    await symlink('/etc/hostname', path.join(root, 'link'));
    await expect(listTree(root)).rejects.toThrow(/neither a file nor a folder/);
  });
});

describe('sha256File', () => {
  it('matches node:crypto', async () => {
    const file = path.join(workDir, 'hash-input.bin');
    const content = Buffer.alloc(200_000);
    new SeededRandom(7).fill(content);
    await writeFile(file, content);
    const expected = createHash('sha256').update(content).digest('hex');
    expect(await sha256File(file)).toBe(expected);
  });

  it('hashes the empty file', async () => {
    const file = path.join(workDir, 'hash-empty.bin');
    await writeFile(file, '');
    expect(await sha256File(file)).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
