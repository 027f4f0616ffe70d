// The read engine through a real mount: threads doing interleaved preads on one file, a file
// replaced on the emulator while a handle is open, and a download body cut mid-stream.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
import { SeededRandom } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping read-engine mount tests: ${fuse.reason}`);

// Eight threads share one descriptor of the mounted file and one of the source, and compare
// every pread. Threads release the GIL in os.pread, so the kernel receives concurrent reads.
const PREAD_SCRIPT = `
import os, random, sys, threading
mounted, source = sys.argv[1], sys.argv[2]
size = os.path.getsize(source)
mfd, sfd = os.open(mounted, os.O_RDONLY), os.open(source, os.O_RDONLY)
errors = []
def worker(seed):
    rng = random.Random(seed)
    for _ in range(150):
        offset = rng.randrange(0, size)
        length = rng.choice([1, 4096, 65536, 131072, 300000])
        if os.pread(mfd, length, offset) != os.pread(sfd, length, offset):
            errors.append((seed, offset, length))
threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(errors), errors[:3])
`;

// Reads the first MiB of a file, prints "ready", waits for a line on stdin, then reads the rest
// in order plus one block far away (a new request), and prints the SHA-256 of each part.
const HOLD_OPEN_SCRIPT = `
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
head = os.pread(fd, 1 << 20, 0)
print("ready", flush=True)
sys.stdin.readline()
rest = b""
while len(head) + len(rest) < size:
    chunk = os.pread(fd, 1 << 17, len(head) + len(rest))
    if not chunk: break
    rest += chunk
far = os.pread(fd, 4096, size - 8192)
print(hashlib.sha256(head + rest).hexdigest(), hashlib.sha256(far).hexdigest(), flush=True)
`;

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function seededBytes(size: number, seed: number): Buffer {
  const random = new SeededRandom(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) out.writeUInt32LE(random.nextUint32(), i);
  return out;
}

describe.skipIf(!fuse.ok)('read engine through the mount', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  let configFile: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-read-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(source);
    await mkdir(mountpoint);
    await writeFile(path.join(source, 'random.bin'), seededBytes(24 * 1024 * 1024, 11));
    await writeFile(path.join(source, 'replaced.bin'), seededBytes(6 * 1024 * 1024, 12));
    await writeFile(path.join(source, 'cut.bin'), seededBytes(24 * 1024 * 1024, 14));
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    // A short listing TTL lets a new open see the replaced file within the test.
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--dir-cache-time', '1'] });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('8 threads of interleaved preads read the right bytes', async () => {
    const result = await run(
      '/usr/bin/python3',
      ['-c', PREAD_SCRIPT, path.join(mountpoint, 'random.bin'), path.join(source, 'random.bin')],
      { timeoutMs: 120_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('0 []');
  });

  // Replaces a file through files/upload, as another device syncing to the account would, so
  // Dropbox keeps the earlier revision.
  async function uploadAsAnotherClient(dropboxPath: string, content: Buffer): Promise<void> {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: config.refreshToken ?? '',
      client_id: config.appKey ?? '',
      client_secret: config.appSecret ?? '',
    });
    const token = (await (await fetch(`${emulator.url}/oauth2/token`, { method: 'POST', body: form })).json()) as {
      access_token: string;
    };
    const response = await fetch(`${emulator.url}/2/files/upload`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token.access_token}`,
        'content-type': 'application/octet-stream',
        'dropbox-api-arg': JSON.stringify({ path: dropboxPath, mode: 'overwrite' }),
      },
      body: content,
    });
    if (!response.ok) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  }

  it('open handle keeps its revision after a remote replace', async () => {
    const original = await readFile(path.join(source, 'replaced.bin'));
    const replacement = seededBytes(original.length, 13);
    const child = spawn('/usr/bin/python3', ['-c', HOLD_OPEN_SCRIPT, path.join(mountpoint, 'replaced.bin')]);
    let stdout = '';
    let stderr = '';
    let replaced = false;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lines = new Promise<string[]>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('ready') && !replaced) {
          replaced = true;
          uploadAsAnotherClient('/replaced.bin', replacement).then(() => child.stdin.write('go\n'), (err: unknown) => {
            stderr += String(err);
            child.kill();
          });
        }
      });
      child.on('close', () => resolve(stdout.split('\n')));
    });
    const output = await lines;
    expect(stderr).toBe('');
    const hashes = output.find((line) => /^[0-9a-f]{64} [0-9a-f]{64}$/.test(line))?.split(' ');
    expect(hashes?.[0]).toBe(sha256(original));
    expect(hashes?.[1]).toBe(sha256(original.subarray(original.length - 8192, original.length - 4096)));

    await new Promise((resolve) => setTimeout(resolve, 2500));
    const cat = await run('sh', ['-c', 'sha256sum < "$1"', 'sh', path.join(mountpoint, 'replaced.bin')]);
    expect(cat.stdout.split(' ')[0]).toBe(sha256(replacement));
  });

  it('cut body resumes at the right offset', async () => {
    await fetch(`${emulator.url}/_emulator/calls`, { method: 'DELETE' });
    await postJson(`${emulator.url}/_emulator/faults`, {
      route: 'files/download',
      fault: 'cut-after',
      bytes: 1048576,
      times: 1,
    });
    const file = path.join(mountpoint, 'cut.bin');
    const drop = await run('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
    expect(drop.code, drop.stderr).toBe(0);
    const result = await run('sh', ['-c', 'sha256sum < "$1"', 'sh', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split(' ')[0]).toBe(sha256(await readFile(path.join(source, 'cut.bin'))));
    const downloads = (await emulator.calls()).filter((call) => call.route === 'files/download');
    const starts = downloads.map((call) => Number(/^bytes=(\d+)-/.exec(call.range ?? '')?.[1]));
    expect(starts[0]).toBe(0);
    // After the cut at 1 MiB, the ranges [1, 9) and [9, 24) MiB cover the rest.
    expect(downloads).toHaveLength(3);
    // The resume starts at the first byte not received. Bytes the emulator wrote just before
    // destroying the socket, and bytes still in this side's receive buffer, are lost with the
    // connection, so it is at most 1 MiB; the hash check above shows nothing was skipped.
    const resumeAt = starts[1] ?? 0;
    expect(resumeAt).toBeLessThanOrEqual(1048576);
    expect(resumeAt).toBeGreaterThan(0);
  });
});
