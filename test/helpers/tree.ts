// Deterministic test trees for the emulator's data folder.
//
// Generated file contents come from a seeded xorshift32 generator, seeded per file from the
// tree seed and the file's relative path, so the same spec gives byte-identical files and
// adding a file does not change the others. Every file gets a whole-second mtime, because
// Dropbox timestamps have one-second resolution and the mount reports them that way.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

const MIB = 1024 * 1024;
const WRITE_CHUNK_BYTES = MIB;
// 2023-11-14T22:13:20Z. Generated files get this mtime plus an offset derived from their path.
const BASE_MTIME_SECONDS = 1_700_000_000;
const MTIME_SPREAD_SECONDS = 10_000_000;

export interface DocsCopySpec {
  /** Folder to copy regular files from, such as /usr/share/doc. */
  sourceDir: string;
  /** Maximum number of files to copy. */
  maxFiles: number;
}

export interface TreeSpec {
  /** Seed for generated contents and mtimes. The same seed gives the same tree. */
  seed: number;
  /** Real files to copy under `docs/`, or null for none. */
  docs: DocsCopySpec | null;
  /** Size in bytes of `large/large.bin`, or 0 for no large file. */
  largeFileBytes: number;
  /** Number of files in `wide/`. */
  wideFolderEntries: number;
}

/** Tree with a 105 MiB file, up to 3,000 copied documentation files and a 2,000-entry folder. */
export const FULL_TREE_SPEC: TreeSpec = {
  seed: 1,
  docs: { sourceDir: '/usr/share/doc', maxFiles: 3_000 },
  largeFileBytes: 105 * MIB,
  wideFolderEntries: 2_000,
};

/**
 * Tree small enough for unit tests. Its large file spans several write chunks and ends
 * mid-chunk, so it still covers reads across 128 KiB and 1 MiB boundaries.
 */
export const SMALL_TREE_SPEC: TreeSpec = {
  seed: 1,
  docs: { sourceDir: '/usr/share/doc', maxFiles: 40 },
  largeFileBytes: 3 * MIB + 17,
  wideFolderEntries: 50,
};

/** Relative paths (with `/`) of the generated files that cover specific cases. */
export const TREE_PATHS = {
  empty: 'empty.txt',
  large: 'large/large.bin',
  wideFolder: 'wide',
  deep: 'nested/a/b/c/d/e/deep.txt',
  spaces: 'names/with spaces/a file with spaces.txt',
  accents: 'names/Répertoire été/crème brûlée.txt'.normalize('NFC'),
  emoji: 'names/📦 box/🎉 party 🦊.txt',
} as const;

// Sizes around the 4 KiB page and the 128 KiB default FUSE read size.
const BOUNDARY_FILE_SIZES = [1, 4_095, 4_096, 4_097, 131_071, 131_072, 131_073];

export interface TreeSummary {
  root: string;
  fileCount: number;
  totalBytes: number;
  /** Number of files copied from `spec.docs.sourceDir`. */
  docsCopied: number;
}

/** Entry returned by `listTree`, with a null `size` for folders. */
export interface TreeEntry {
  path: string;
  kind: 'file' | 'dir';
  size: number | null;
}

// ---------------------------------------------------------------------------------------------
// Seeded bytes

/** Orders strings by UTF-16 code units, the same in every locale. */
function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

// 32-bit FNV-1a over the UTF-8 bytes of `text`.
function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Marsaglia's xorshift32. Not for cryptography: it only needs to be fast and repeatable. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    // xorshift32 stays at zero forever from a zero state.
    this.state = (seed >>> 0) || 0x9e3779b9;
  }

  nextUint32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** Fills `buffer` byte by byte in little-endian order, the same on every platform. */
  fill(buffer: Buffer): void {
    let i = 0;
    for (; i + 4 <= buffer.length; i += 4) {
      const value = this.nextUint32();
      buffer[i] = value & 0xff;
      buffer[i + 1] = (value >>> 8) & 0xff;
      buffer[i + 2] = (value >>> 16) & 0xff;
      buffer[i + 3] = value >>> 24;
    }
    if (i < buffer.length) {
      let value = this.nextUint32();
      for (; i < buffer.length; i++) {
        buffer[i] = value & 0xff;
        value >>>= 8;
      }
    }
  }
}

function fileSeed(spec: TreeSpec, relativePath: string): number {
  return (hashText(relativePath) ^ Math.imul(spec.seed >>> 0, 0x9e3779b1)) >>> 0;
}

function fileMtimeSeconds(spec: TreeSpec, relativePath: string): number {
  return BASE_MTIME_SECONDS + (fileSeed(spec, relativePath) % MTIME_SPREAD_SECONDS);
}

// ---------------------------------------------------------------------------------------------
// Writing

class TreeWriter {
  fileCount = 0;
  totalBytes = 0;

  constructor(
    readonly root: string,
    readonly spec: TreeSpec,
  ) {}

  /** Writes `size` seeded bytes in chunks, so large files are never held in memory. */
  async writeSeededFile(relativePath: string, size: number): Promise<void> {
    const target = await this.prepare(relativePath);
    const random = new SeededRandom(fileSeed(this.spec, relativePath));
    const handle = await open(target, 'wx');
    try {
      const chunk = Buffer.alloc(Math.min(size, WRITE_CHUNK_BYTES));
      for (let written = 0; written < size; written += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - written));
        random.fill(part);
        await handle.write(part, 0, part.length);
      }
    } finally {
      await handle.close();
    }
    await this.finish(target, relativePath, size);
  }

  async writeTextFile(relativePath: string, text: string): Promise<void> {
    const target = await this.prepare(relativePath);
    await writeFile(target, text, { flag: 'wx' });
    await this.finish(target, relativePath, Buffer.byteLength(text));
  }

  private async prepare(relativePath: string): Promise<string> {
    const target = path.join(this.root, relativePath);
    await mkdir(path.dirname(target), { recursive: true });
    return target;
  }

  private async finish(target: string, relativePath: string, size: number): Promise<void> {
    const mtime = fileMtimeSeconds(this.spec, relativePath);
    await utimes(target, mtime, mtime);
    this.fileCount += 1;
    this.totalBytes += size;
  }
}

async function writeGeneratedFiles(writer: TreeWriter): Promise<void> {
  const { spec } = writer;
  await writer.writeTextFile(TREE_PATHS.empty, '');
  await writer.writeTextFile('README.txt', 'Test tree written by test/helpers/tree.ts.\n');
  await writer.writeTextFile(TREE_PATHS.deep, 'six folders down\n');
  await writer.writeTextFile(TREE_PATHS.spaces, 'a name with spaces\n');
  await writer.writeTextFile(TREE_PATHS.accents, 'crème brûlée, déjà vu, Ærøskøbing\n');
  await writer.writeTextFile(TREE_PATHS.emoji, 'party 🎉 fox 🦊\n');

  for (const size of BOUNDARY_FILE_SIZES) {
    await writer.writeSeededFile(`sizes/${size}.bin`, size);
  }

  if (spec.largeFileBytes > 0) {
    await writer.writeSeededFile(TREE_PATHS.large, spec.largeFileBytes);
  }

  const digits = String(Math.max(spec.wideFolderEntries - 1, 0)).length;
  for (let i = 0; i < spec.wideFolderEntries; i++) {
    const relativePath = `${TREE_PATHS.wideFolder}/entry-${String(i).padStart(digits, '0')}.bin`;
    // 1 to 256 bytes, so entries differ in size as well as content.
    await writer.writeSeededFile(relativePath, 1 + (fileSeed(spec, relativePath) % 256));
  }
}

// ---------------------------------------------------------------------------------------------
// Copying real files

interface DocsCopy {
  copied: number;
  maxFiles: number;
  /** Lower-cased relative path mapped to the path as copied, because Dropbox ignores case. */
  seenLower: Map<string, string>;
}

function isReadError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'ELOOP';
}

// Returns false when `relativePath` or one of its parent folders differs only in case from a
// path already copied, because Dropbox would treat the two as the same path.
function claimPath(copy: DocsCopy, relativePath: string): boolean {
  const parts = relativePath.split('/');
  for (let depth = 1; depth <= parts.length; depth++) {
    const prefix = parts.slice(0, depth).join('/');
    const existing = copy.seenLower.get(prefix.toLowerCase());
    if (existing !== undefined && existing !== prefix) return false;
  }
  for (let depth = 1; depth <= parts.length; depth++) {
    const prefix = parts.slice(0, depth).join('/');
    copy.seenLower.set(prefix.toLowerCase(), prefix);
  }
  return true;
}

/**
 * Copies regular files from `sourceDir` in sorted order until `maxFiles` are copied. Symbolic
 * links, special files, unreadable entries and case-insensitive duplicates are skipped.
 */
async function copyDocs(
  writer: TreeWriter,
  copy: DocsCopy,
  sourceDir: string,
  relativeDir: string,
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(sourceDir);
  } catch (error) {
    if (isReadError(error)) return;
    throw error;
  }
  // Code-unit order, so the copied subset does not depend on the locale.
  names.sort(compareCodeUnits);

  for (const name of names) {
    if (copy.copied >= copy.maxFiles) return;
    await copyDocsEntry(writer, copy, path.join(sourceDir, name), `${relativeDir}/${name}`);
  }
}

async function copyDocsEntry(
  writer: TreeWriter,
  copy: DocsCopy,
  source: string,
  relativePath: string,
): Promise<void> {
  let info;
  try {
    info = await lstat(source);
  } catch (error) {
    if (isReadError(error)) return;
    throw error;
  }

  if (info.isDirectory()) {
    await copyDocs(writer, copy, source, relativePath);
    return;
  }
  if (!info.isFile() || !claimPath(copy, relativePath)) return;

  const target = path.join(writer.root, relativePath);
  await mkdir(path.dirname(target), { recursive: true });
  try {
    await copyFile(source, target);
  } catch (error) {
    if (isReadError(error)) return;
    throw error;
  }
  const mtime = Math.floor(info.mtimeMs / 1000);
  await utimes(target, mtime, mtime);
  copy.copied += 1;
  writer.fileCount += 1;
  writer.totalBytes += info.size;
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Builds a test tree in `dir`, which must be missing or empty. The same spec and the same docs
 * source give the same paths, contents and mtimes.
 *
 * Layout: `README.txt`, an empty `empty.txt`, files with spaces, accents (NFC) and emoji in
 * their names under `names/`, a six-level `nested/` path, files of page-boundary sizes under
 * `sizes/`, `large/large.bin` when `largeFileBytes > 0`, `wide/` with `wideFolderEntries` files,
 * and copied real files under `docs/`. Throws if `dir` already contains a generated path.
 */
export async function makeTree(dir: string, spec: TreeSpec): Promise<TreeSummary> {
  await mkdir(dir, { recursive: true });
  const writer = new TreeWriter(dir, spec);
  await writeGeneratedFiles(writer);

  let docsCopied = 0;
  if (spec.docs !== null) {
    const copy: DocsCopy = { copied: 0, maxFiles: spec.docs.maxFiles, seenLower: new Map() };
    await copyDocs(writer, copy, spec.docs.sourceDir, 'docs');
    docsCopied = copy.copied;
  }

  return {
    root: dir,
    fileCount: writer.fileCount,
    totalBytes: writer.totalBytes,
    docsCopied,
  };
}

/** Computes the SHA-256 of a file as lowercase hex, reading it as a stream. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * Lists every file and folder under `dir` (not `dir` itself) with paths relative to it, `/` as
 * separator, sorted by UTF-16 code units. Works on a FUSE mount, because it only uses async
 * calls. Throws on symbolic links and special files, which test trees do not contain.
 */
export async function listTree(dir: string): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  await walk(dir, '', entries);
  return entries.sort((a, b) => compareCodeUnits(a.path, b.path));
}

async function walk(dir: string, relativeDir: string, entries: TreeEntry[]): Promise<void> {
  for (const name of await readdir(dir)) {
    const relativePath = relativeDir === '' ? name : `${relativeDir}/${name}`;
    const absolutePath = path.join(dir, name);
    const info = await lstat(absolutePath);
    if (info.isDirectory()) {
      entries.push({ path: relativePath, kind: 'dir', size: null });
      await walk(absolutePath, relativePath, entries);
    } else if (info.isFile()) {
      entries.push({ path: relativePath, kind: 'file', size: info.size });
    } else {
      throw new Error(`${absolutePath} is neither a file nor a folder`);
    }
  }
}

/** Returns the whole-second mtime of a file, as `stat -c %Y` prints it. */
export async function mtimeSeconds(file: string): Promise<number> {
  return Math.floor((await stat(file)).mtimeMs / 1000);
}
