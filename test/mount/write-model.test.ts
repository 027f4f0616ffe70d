// Model-based test of the write path: fast-check generates sequences of file and folder
// operations, and each sequence runs on a plain local folder (the model) and on a writable
// mount. Every operation must give the same result (OK or the same errno) on both. The trees
// must match in names, sizes and bytes at checkpoints inside a sequence and at its end, and
// once uploads are done the emulator's data folder must match the model too.
//
// Every call on the mount goes through fs.promises, so the test process keeps draining the
// daemon's log pipe while the calls wait for the daemon.

import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, truncate, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CLI_PATH, fuseAvailable, run } from '../helpers/processes.js';
import { startWriteMount, waitUntil, type WriteMount } from '../helpers/write-mount.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping write-model mount test: ${fuse.reason}`);

const KIB = 1024;
const MIB = 1024 * KIB;
// WRITE_MODEL_SEED and WRITE_MODEL_RUNS replace the fixed seed and run count when exploring.
const SEED = Number(process.env.WRITE_MODEL_SEED ?? 20_261_204);
const SEQUENCES = Number(process.env.WRITE_MODEL_RUNS ?? 24);
const UPLOAD_WAIT_MS = 60_000;
const RUN_TIME_LIMIT_MS = 240_000;

// Distinct after NFC normalization and lower-casing, because Dropbox compares names that way
// and the model folder does not. None ends with a space or contains a control character or a
// backslash, which Dropbox rejects. 'cafe\u0301.md' is in NFD form and has no NFC sibling.
const NAMES = [
  'a.txt',
  'B file.bin',
  'notes 2026.md',
  'Ünïcödé.dat',
  'straße',
  'Ørsted',
  '日本語.txt',
  'cafe\u0301.md',
  'x',
  '.hidden',
  'Ωmega dir',
  'long name with several spaces.log',
];
// Its parent folder never exists, so every operation on it fails with ENOENT.
const MISSING_PATH = 'no such folder/no such file';

type Where = 'inside' | 'end' | 'past';
type TruncateMode = 'shrink' | 'grow' | 'zero';
// 'name': a pool name in some folder. 'file' and 'folder': an existing file or folder.
// 'into': the source's own name in some folder.
type RenameTarget = 'name' | 'file' | 'folder' | 'into';
type FolderRenameTarget = 'name' | 'folder';

// Indices (`dir`, `name`, `file`, `folder`, `entry`) pick from what exists in the model when
// the operation runs, modulo the list length, so every shrunk sequence still means something.
type Op =
  | { kind: 'create'; dir: number; name: number; size: number; seed: number; exclusive: boolean }
  | { kind: 'overwrite'; file: number; size: number; seed: number }
  | { kind: 'append'; file: number; size: number; seed: number }
  | { kind: 'pwrite'; file: number; where: Where; permille: number; gap: number; size: number; seed: number }
  | { kind: 'truncate'; file: number; mode: TruncateMode; amount: number }
  | { kind: 'renameFile'; file: number; target: RenameTarget; dir: number; name: number }
  | { kind: 'mkdir'; dir: number; name: number }
  | { kind: 'renameFolder'; folder: number; target: FolderRenameTarget; dir: number; name: number }
  | { kind: 'rmdir'; folder: number }
  | { kind: 'unlink'; entry: number }
  | { kind: 'unlinkWhileOpen'; dir: number; name: number; size: number; seed: number }
  | { kind: 'utimes'; file: number; mtime: number }
  | { kind: 'check' };

/** One operation with its paths resolved, relative to the sequence's root folder. */
type Step =
  | { kind: 'create'; path: string; bytes: Buffer; flag: 'w' | 'wx' }
  | { kind: 'append'; path: string; bytes: Buffer }
  | { kind: 'pwrite'; path: string; offset: number; bytes: Buffer }
  | { kind: 'truncate'; path: string; length: number }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'mkdir'; path: string }
  | { kind: 'rmdir'; path: string }
  | { kind: 'unlink'; path: string }
  | { kind: 'unlinkWhileOpen'; path: string; bytes: Buffer }
  | { kind: 'utimes'; path: string; mtime: number };

interface StepResult {
  /** 'OK' or the error code, such as 'ENOENT'. */
  outcome: string;
  /** Whole-second mtime that stat reports after a successful utimes. */
  mtimeSeconds?: number;
}

interface Entry {
  path: string;
  type: 'dir' | 'file';
  size: number;
  sha256: string;
}

// Mostly small sizes. A few exceed one upload session chunk (16 MiB, SESSION_CHUNK_BYTES in
// src/write/upload.ts) or two, so uploads use sessions with and without append calls.
const createSize = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 4 * KIB }), weight: 60 },
  { arbitrary: fc.integer({ min: 4 * KIB, max: MIB }), weight: 25 },
  { arbitrary: fc.integer({ min: MIB, max: 8 * MIB }), weight: 8 },
  { arbitrary: fc.integer({ min: 16 * MIB + 1, max: 24 * MIB }), weight: 5 },
  { arbitrary: fc.integer({ min: 32 * MIB + 1, max: 40 * MIB }), weight: 3 },
);
const smallSize = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 4 * KIB }), weight: 4 },
  { arbitrary: fc.integer({ min: 4 * KIB, max: MIB }), weight: 1 },
);
const gap = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 64 * KIB }), weight: 8 },
  { arbitrary: fc.integer({ min: 16 * MIB, max: 18 * MIB }), weight: 1 },
);
const index = fc.nat({ max: 1000 });
const seed = fc.integer({ min: 1, max: 0x7fffffff });

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('create' as const), dir: index, name: index, size: createSize, seed, exclusive: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant('overwrite' as const), file: index, size: createSize, seed }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('append' as const), file: index, size: smallSize, seed }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('pwrite' as const),
      file: index,
      where: fc.constantFrom<Where>('inside', 'end', 'past'),
      permille: fc.nat({ max: 1000 }),
      gap,
      size: smallSize,
      seed,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('truncate' as const),
      file: index,
      mode: fc.constantFrom<TruncateMode>('shrink', 'grow', 'zero'),
      amount: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 64 * KIB }), weight: 8 }, { arbitrary: fc.integer({ min: 16 * MIB, max: 17 * MIB }), weight: 1 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('renameFile' as const),
      file: index,
      target: fc.constantFrom<RenameTarget>('name', 'file', 'folder', 'into'),
      dir: index,
      name: index,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('mkdir' as const), dir: index, name: index }), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant('renameFolder' as const),
      folder: index,
      target: fc.constantFrom<FolderRenameTarget>('name', 'folder'),
      dir: index,
      name: index,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('rmdir' as const), folder: index }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('unlink' as const), entry: index }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('unlinkWhileOpen' as const), dir: index, name: index, size: smallSize, seed }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('utimes' as const), file: index, mtime: fc.integer({ min: 1_000_000_000, max: 1_900_000_000 }) }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'check' as const }), weight: 1 },
);

/** Returns `size` pseudo-random bytes from a xorshift32 generator seeded with `seed`. */
function randomBytes(size: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let state = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i += 1) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    words[i] = state;
  }
  return Buffer.from(words.buffer, 0, size);
}

function pick<T>(items: T[], at: number): T | undefined {
  return items.length === 0 ? undefined : items[at % items.length];
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Lists the folders (with '' for the root) and files under `root`, sorted by path. */
async function listTree(root: string): Promise<{ dirs: string[]; files: Entry[] }> {
  const dirs: string[] = [''];
  const files: Entry[] = [];
  const walk = async (relative: string): Promise<void> => {
    const names = (await readdir(path.join(root, relative))).sort();
    for (const name of names) {
      const child = join(relative, name);
      const info = await stat(path.join(root, child));
      if (info.isDirectory()) {
        dirs.push(child);
        await walk(child);
      } else {
        const sha256 = createHash('sha256').update(await readFile(path.join(root, child))).digest('hex');
        files.push({ path: child, type: 'file', size: info.size, sha256 });
      }
    }
  };
  await walk('');
  return { dirs, files };
}

async function snapshot(root: string): Promise<Entry[]> {
  const { dirs, files } = await listTree(root);
  const folders: Entry[] = dirs.filter((dir) => dir !== '').map((dir) => ({ path: dir, type: 'dir', size: 0, sha256: '' }));
  const entries = [...folders, ...files];
  entries.sort((a, b) => {
    if (a.path === b.path) return 0;
    return a.path < b.path ? -1 : 1;
  });
  return entries;
}

/** Resolves `op` against the model's current tree. Returns undefined for a checkpoint. */
async function resolveStep(op: Op, modelRoot: string): Promise<Step | undefined> {
  const { dirs, files } = await listTree(modelRoot);
  const filePaths = files.map((file) => file.path);
  const folders = dirs.filter((dir) => dir !== '');
  const nameIn = (dir: number, name: number): string => join(pick(dirs, dir) ?? '', NAMES[name % NAMES.length] as string);
  const fileAt = (at: number): string => pick(filePaths, at) ?? MISSING_PATH;
  const sizeOf = (file: string): number => files.find((entry) => entry.path === file)?.size ?? 0;

  switch (op.kind) {
    case 'check':
      return undefined;
    case 'create':
      return { kind: 'create', path: nameIn(op.dir, op.name), bytes: randomBytes(op.size, op.seed), flag: op.exclusive ? 'wx' : 'w' };
    case 'overwrite':
      return { kind: 'create', path: fileAt(op.file), bytes: randomBytes(op.size, op.seed), flag: 'w' };
    case 'append':
      return { kind: 'append', path: fileAt(op.file), bytes: randomBytes(op.size, op.seed) };
    case 'pwrite': {
      const file = fileAt(op.file);
      const size = sizeOf(file);
      const offsets: Record<Where, number> = { inside: Math.floor((size * op.permille) / 1000), end: size, past: size + op.gap };
      const offset = offsets[op.where];
      return { kind: 'pwrite', path: file, offset, bytes: randomBytes(Math.max(op.size, 1), op.seed) };
    }
    case 'truncate': {
      const file = fileAt(op.file);
      const size = sizeOf(file);
      const lengths: Record<TruncateMode, number> = { zero: 0, grow: size + op.amount, shrink: Math.max(0, size - op.amount) };
      const length = lengths[op.mode];
      return { kind: 'truncate', path: file, length };
    }
    case 'renameFile': {
      const from = fileAt(op.file);
      const targets: Record<RenameTarget, () => string> = {
        name: () => nameIn(op.dir, op.name),
        file: () => fileAt(op.name),
        folder: () => pick(folders, op.name) ?? nameIn(op.dir, op.name),
        into: () => join(pick(dirs, op.dir) ?? '', path.posix.basename(from)),
      };
      return { kind: 'rename', from, to: targets[op.target]() };
    }
    case 'mkdir':
      return { kind: 'mkdir', path: nameIn(op.dir, op.name) };
    case 'renameFolder': {
      const from = pick(folders, op.folder) ?? MISSING_PATH;
      const to = op.target === 'folder' ? (pick(folders, op.name) ?? nameIn(op.dir, op.name)) : nameIn(op.dir, op.name);
      return { kind: 'rename', from, to };
    }
    case 'rmdir':
      return { kind: 'rmdir', path: pick(folders, op.folder) ?? MISSING_PATH };
    case 'unlink':
      return { kind: 'unlink', path: pick([...folders, ...filePaths], op.entry) ?? MISSING_PATH };
    case 'unlinkWhileOpen':
      return { kind: 'unlinkWhileOpen', path: nameIn(op.dir, op.name), bytes: randomBytes(op.size, op.seed) };
    case 'utimes':
      return { kind: 'utimes', path: fileAt(op.file), mtime: op.mtime };
  }
}

async function kindAt(root: string, relative: string): Promise<'file' | 'folder' | 'nothing'> {
  try {
    return (await stat(path.join(root, relative))).isDirectory() ? 'folder' : 'file';
  } catch {
    return 'nothing';
  }
}

async function pwrite(file: string, bytes: Buffer, offset: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

// Opens, writes, unlinks while the handle is open, writes again and closes.
async function unlinkWhileOpen(file: string, bytes: Buffer): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.write(bytes, 0, bytes.length, 0);
    await unlink(file);
    await handle.write(bytes, 0, bytes.length, bytes.length);
  } finally {
    await handle.close();
  }
}

async function applyStep(root: string, step: Step): Promise<StepResult> {
  const at = (relative: string): string => path.join(root, relative);
  try {
    switch (step.kind) {
      case 'create': {
        const handle = await open(at(step.path), step.flag);
        try {
          await handle.writeFile(step.bytes);
        } finally {
          await handle.close();
        }
        break;
      }
      case 'append': {
        const handle = await open(at(step.path), 'r+');
        try {
          const { size } = await handle.stat();
          await handle.write(step.bytes, 0, step.bytes.length, size);
        } finally {
          await handle.close();
        }
        break;
      }
      case 'pwrite':
        await pwrite(at(step.path), step.bytes, step.offset);
        break;
      case 'truncate':
        await truncate(at(step.path), step.length);
        break;
      case 'rename':
        await rename(at(step.from), at(step.to));
        break;
      case 'mkdir':
        await mkdir(at(step.path));
        break;
      case 'rmdir':
        await rmdir(at(step.path));
        break;
      case 'unlink':
        await unlink(at(step.path));
        break;
      case 'unlinkWhileOpen':
        await unlinkWhileOpen(at(step.path), step.bytes);
        break;
      case 'utimes': {
        await utimes(at(step.path), step.mtime, step.mtime);
        const mtimeSeconds = Math.floor((await stat(at(step.path))).mtimeMs / 1000);
        return { outcome: 'OK', mtimeSeconds };
      }
    }
    return { outcome: 'OK' };
  } catch (error) {
    return { outcome: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

function describeStep(step: Step): string {
  switch (step.kind) {
    case 'create':
      return `open(${JSON.stringify(step.path)}, '${step.flag}') + write ${step.bytes.length} bytes`;
    case 'append':
      return `append ${step.bytes.length} bytes to ${JSON.stringify(step.path)}`;
    case 'pwrite':
      return `pwrite ${step.bytes.length} bytes at ${step.offset} into ${JSON.stringify(step.path)}`;
    case 'truncate':
      return `truncate ${JSON.stringify(step.path)} to ${step.length}`;
    case 'rename':
      return `rename ${JSON.stringify(step.from)} -> ${JSON.stringify(step.to)}`;
    case 'mkdir':
    case 'rmdir':
    case 'unlink':
      return `${step.kind} ${JSON.stringify(step.path)}`;
    case 'unlinkWhileOpen':
      return `open ${JSON.stringify(step.path)} 'w', write ${step.bytes.length}, unlink, write ${step.bytes.length}, close`;
    case 'utimes':
      return `utimes ${JSON.stringify(step.path)} ${step.mtime}`;
  }
}

function describeTreeDifference(expected: Entry[], actual: Entry[]): string {
  const lines: string[] = [];
  const byPath = new Map(actual.map((entry) => [entry.path, entry]));
  for (const entry of expected) {
    const other = byPath.get(entry.path);
    if (other === undefined) lines.push(`missing ${entry.type} ${JSON.stringify(entry.path)} (${entry.size} bytes)`);
    else if (other.type !== entry.type || other.size !== entry.size || other.sha256 !== entry.sha256) {
      lines.push(`differs ${JSON.stringify(entry.path)}: expected ${entry.type} ${entry.size} bytes, got ${other.type} ${other.size} bytes${other.sha256 === entry.sha256 ? '' : ' with other bytes'}`);
    }
    byPath.delete(entry.path);
  }
  for (const entry of byPath.values()) lines.push(`unexpected ${entry.type} ${JSON.stringify(entry.path)} (${entry.size} bytes)`);
  return lines.join('\n');
}

async function uploadsPending(mountpoint: string): Promise<number> {
  const result = await run(process.execPath, [CLI_PATH, 'status', '--json', mountpoint]);
  if (result.code !== 0) throw new Error(`dropbox-mount status failed (code ${result.code}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as { uploadsPending: number }).uploadsPending;
}

describe.skipIf(!fuse.ok)('write path against a local model', () => {
  let mount: WriteMount;
  let modelDir: string;
  let sequence = 0;
  let failureLogged = false;
  const coverage = new Map<string, number>();

  beforeAll(async () => {
    mount = await startWriteMount('dropbox-mount-write-model-', async () => {});
    modelDir = path.join(mount.workDir, 'model');
    await mkdir(modelDir);
  });

  afterAll(async () => {
    await mount?.close();
  });

  const count = (key: string): void => {
    coverage.set(key, (coverage.get(key) ?? 0) + 1);
  };

  // Runs one sequence in a new folder `sN` of both trees and throws at the first difference,
  // with the steps so far and the daemon's warnings and errors in the message.
  async function runSequence(ops: Op[]): Promise<void> {
    sequence += 1;
    const folder = `s${sequence}`;
    const modelRoot = path.join(modelDir, folder);
    const mountRoot = path.join(mount.mountpoint, folder);
    const dataRoot = path.join(mount.data, folder);
    const logStart = mount.daemon.logLines().length;
    const transcript: string[] = [];
    const fail = (message: string): never => {
      const logs = mount.daemon
        .logLines()
        .slice(logStart)
        .filter((line) => Number(line.level) >= 40)
        .slice(-15)
        .map((line) => JSON.stringify(line));
      const report = `${message}\nsteps in ${folder}:\n${transcript.join('\n')}\ndaemon warnings and errors:\n${logs.join('\n') || '(none)'}`;
      if (!failureLogged) console.log(`first failing sequence, before shrinking:\n${report}`);
      failureLogged = true;
      throw new Error(report);
    };
    const compare = async (label: string, root: string): Promise<void> => {
      const expected = await snapshot(modelRoot);
      const actual = await snapshot(root);
      const difference = describeTreeDifference(expected, actual);
      if (difference !== '') fail(`${label} differs from the model:\n${difference}`);
    };

    await mkdir(modelRoot);
    await mkdir(mountRoot);
    try {
      for (const op of ops) {
        const step = await resolveStep(op, modelRoot);
        if (step === undefined) {
          transcript.push('check mount tree and, after uploads, the data folder');
          await compare('mount tree', mountRoot);
          await waitUntil(async () => (await uploadsPending(mount.mountpoint)) === 0, UPLOAD_WAIT_MS, 'uploadsPending 0');
          await compare('emulator data folder', dataRoot);
          continue;
        }
        transcript.push(describeStep(step));
        const label = step.kind === 'rename' ? `rename ${await kindAt(modelRoot, step.from)} over ${await kindAt(modelRoot, step.to)}` : step.kind;
        const expected = await applyStep(modelRoot, step);
        const actual = await applyStep(mountRoot, step);
        count(`${label} ${expected.outcome}`);
        if (step.kind === 'pwrite' && step.offset > 16 * MIB) count('pwrite past 16 MiB');
        if ('bytes' in step && step.bytes.length > 16 * MIB) count(step.bytes.length > 32 * MIB ? 'write over 32 MiB' : 'write over 16 MiB');
        transcript[transcript.length - 1] += ` -> ${expected.outcome}`;
        if (actual.outcome !== expected.outcome) fail(`mount returned ${actual.outcome}, model ${expected.outcome}`);
        if (actual.mtimeSeconds !== expected.mtimeSeconds) {
          fail(`mount stat mtime ${actual.mtimeSeconds} s, model ${expected.mtimeSeconds} s`);
        }
      }
      await compare('mount tree', mountRoot);
      await waitUntil(async () => (await uploadsPending(mount.mountpoint)) === 0, UPLOAD_WAIT_MS, 'uploadsPending 0');
      await compare('emulator data folder', dataRoot);
    } finally {
      await rm(modelRoot, { recursive: true, force: true });
      await rm(mountRoot, { recursive: true, force: true }).catch(() => {});
    }
  }

  it('matches the model on generated sequences', { timeout: 600_000 }, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 12, maxLength: 30 }), (ops) => runSequence(ops)),
      // Every shrink step replays a sequence on the mount, so the run (shrinking included) stops
      // after the time limit and reports the smallest failing sequence found by then.
      { seed: SEED, numRuns: SEQUENCES, verbose: 1, interruptAfterTimeLimit: RUN_TIME_LIMIT_MS, markInterruptAsFailure: true },
    );
    const covered = [...coverage.entries()].sort().map(([key, times]) => `${key}: ${times}`);
    console.log(`write model: ${SEQUENCES} sequences in ${Date.now() - started} ms\n${covered.join('\n')}`);
    expect(await uploadsPending(mount.mountpoint)).toBe(0);
  });
});
