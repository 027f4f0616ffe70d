// Handles of two revisions of one file open at once, through a real mount. The kernel keeps one
// page cache per file, so the daemon gives such handles direct_io (src/fs/page-cache-guard.ts).
// These tests cover what happens after that overlap: later opens, and the next revision.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  fuseAvailable,
  run,
  runPausedPython,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
} from '../helpers/processes.js';
import { OVERLAP_SCRIPT } from '../helpers/read-scripts.js';
import { SeededRandom } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping page cache revision tests: ${fuse.reason}`);

const MIB = 1024 * 1024;

// Reads the whole file through a new buffered handle and prints [length, sha256].
const READ_WHOLE_SCRIPT = `
import hashlib, json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
data = bytearray()
while True:
    chunk = os.pread(fd, 65536, len(data))
    if not chunk: break
    data += chunk
os.close(fd)
print(json.dumps([len(data), hashlib.sha256(data).hexdigest()]))
`;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function seededBytes(size: number, seed: number): Buffer {
  const random = new SeededRandom(seed);
  const out = Buffer.alloc(Math.ceil(size / 4) * 4);
  for (let i = 0; i < out.length; i += 4) out.writeUInt32LE(random.nextUint32(), i);
  return out.subarray(0, size);
}

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
}

describe.skipIf(!fuse.ok)('page cache across revisions', () => {
  const name = 'mixed.bin';
  const original = seededBytes(2 * MIB, 11);
  const second = seededBytes(2 * MIB + 4096, 12);
  const third = seededBytes(2 * MIB + 8192, 13);
  let workDir: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;

  // Replaces the file through the emulator's control route and waits until the mount shows it.
  async function replaceRemotely(bytes: Buffer): Promise<void> {
    await postJson(`${emulator.url}/_emulator/files/write`, { path: `/${name}`, content_base64: bytes.toString('base64') });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const result = await run('stat', ['-c', '%s', path.join(mountpoint, name)]);
      if (Number(result.stdout.trim()) === bytes.length) return;
      if (Date.now() > deadline) throw new Error(`${name} did not reach size ${bytes.length} through the mount`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function readWhole(): Promise<[number, string]> {
    const result = await run('/usr/bin/python3', ['-c', READ_WHOLE_SCRIPT, path.join(mountpoint, name)], {
      timeoutMs: 20_000,
    });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as [number, string];
  }

  async function downloadCount(): Promise<number> {
    return (await emulator.calls()).filter((call) => call.route === 'files/download').length;
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-page-cache-'));
    const source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(source);
    await mkdir(mountpoint);
    await writeFile(path.join(source, name), original);
    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--dir-cache-time', '1'] });

    // Overlap: A keeps the original open while B reads the replacement.
    const overlap = await runPausedPython(['-c', OVERLAP_SCRIPT, path.join(mountpoint, name)], () =>
      replaceRemotely(second),
    );
    if (overlap.stderr !== '') throw new Error(`overlap script failed: ${overlap.stderr}`);
    const [oldHash, newHash] = JSON.parse(overlap.lastLine) as [string, string];
    if (oldHash !== sha256(original) || newHash !== sha256(second)) {
      throw new Error('the overlapping handles read the wrong revisions');
    }
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('later open reads new revision', async () => {
    expect(await readWhole()).toEqual([second.length, sha256(second)]);
    // Past the attribute timeout (1 s), so libfuse's auto_cache checks the size and mtime again.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await readWhole()).toEqual([second.length, sha256(second)]);
  });

  it('mixed file bypasses page cache', async () => {
    await readWhole();
    const before = await downloadCount();
    expect(await readWhole()).toEqual([second.length, sha256(second)]);
    expect(await downloadCount()).toBeGreaterThan(before);
  });

  it('next revision restores page cache', async () => {
    await replaceRemotely(third);
    expect(await readWhole()).toEqual([third.length, sha256(third)]);
    const before = await downloadCount();
    expect(await readWhole()).toEqual([third.length, sha256(third)]);
    expect(await downloadCount()).toBe(before);
  });
});
