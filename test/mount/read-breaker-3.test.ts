// Attacks on the page cache guard, the getattr reply for an open file gone from Dropbox, the
// first-read rules of RangeReader and the 16 MiB download queue, through a real mount. The first
// describe block contains the cases that failed before their fixes. The other two contain attacks
// that found nothing and stay as regression tests.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
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
if (!fuse.ok) console.warn(`skipping read-breaker-3 mount tests: ${fuse.reason}`);

const KIB = 1024;
const MIB = 1024 * KIB;
// Data folders and mountpoints of these tests go under /var/tmp.
const WORK_ROOT = '/var/tmp';

// Opens argv[1], prints a line and waits for one on stdin (the file goes away remotely in
// between), then runs the shell command argv[2] with the handle still open and prints its exit
// status and stderr as JSON.
const HOLD_AND_RUN_SCRIPT = `
import json, os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 4096, 0)
print("ready", flush=True)
sys.stdin.readline()
done = subprocess.run(sys.argv[2], shell=True, capture_output=True, text=True)
os.close(fd)
print(json.dumps([done.returncode, done.stderr.strip()]))
`;

// Reads the whole file argv[1] through one buffered handle and prints [length, sha256].
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

// For each "offset:length" in argv[2:], opens argv[1], makes that one pread as the first read of
// the handle and prints the SHA-256 of each result as a JSON list.
const FIRST_READS_SCRIPT = `
import hashlib, json, os, sys
out = []
for spec in sys.argv[2:]:
    offset, length = (int(x) for x in spec.split(':'))
    fd = os.open(sys.argv[1], os.O_RDONLY)
    out.append(hashlib.sha256(os.pread(fd, length, offset)).hexdigest())
    os.close(fd)
print(json.dumps(out))
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

interface Mount {
  workDir: string;
  data: string;
  mountpoint: string;
  emulator: EmulatorProcess;
  daemon: DaemonProcess;
}

async function startMount(prefix: string, files: Record<string, Buffer>, daemonArgs: string[]): Promise<Mount> {
  const workDir = await mkdtemp(path.join(WORK_ROOT, prefix));
  const data = path.join(workDir, 'data');
  const mnt = path.join(workDir, 'mnt');
  await mkdir(data);
  await mkdir(mnt);
  for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(data, name), bytes);
  const configFile = path.join(workDir, 'config.json');
  const emulator = await spawnEmulator({ dataDir: data, configFile });
  const daemon = await spawnDaemon({ mountpoint: mnt, config: configFile, extraArgs: daemonArgs });
  return { workDir, data, mountpoint: daemon.mountpoint, emulator, daemon };
}

async function stopMount(mount: Mount | undefined): Promise<void> {
  if (mount === undefined) return;
  await mount.daemon.stop();
  await mount.emulator.stop();
  await rm(mount.workDir, { recursive: true, force: true });
}

// Runs a paused Python script (see runPausedPython) and returns the last line it prints.
async function runWithPause(args: string[], between: () => Promise<void>): Promise<string> {
  const result = await runPausedPython(args, between);
  if (result.stderr !== '') throw new Error(`script failed: ${result.stderr}`);
  return result.lastLine;
}

async function downloads(emulator: EmulatorProcess): Promise<number> {
  return (await emulator.calls()).filter((call) => call.route === 'files/download').length;
}

describe.skipIf(!fuse.ok)('read-breaker-3 defects', () => {
  let mount: Mount;
  const replaced = seededBytes(2 * MIB, 31);
  const replacement = seededBytes(2 * MIB, 32);
  const deletedContent = seededBytes(64 * KIB, 33);

  // Waits until the name is gone from its folder's listing through the mount.
  async function waitUntilUnlisted(name: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const result = await run('ls', ['-1', mount.mountpoint]);
      if (!result.stdout.split('\n').includes(name)) return;
      if (Date.now() > deadline) throw new Error(`${name} is still listed through the mount`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  beforeAll(async () => {
    mount = await startMount('dropbox-mount-rb3-defects-', { 'replaced.bin': replaced, 'gone.txt': deletedContent }, [
      '--dir-cache-time',
      '1',
    ]);
  }, 60_000);

  afterAll(async () => {
    await stopMount(mount);
  });

  // Defect: a file replaced on Dropbox by a new file (delete and upload, or a save that renames a
  // temporary file over it) gets a new file id, and an old handle then reads the new file's pages.
  it('replaced file id keeps revisions apart', async () => {
    const file = path.join(mount.mountpoint, 'replaced.bin');
    const line = await runWithPause(['-c', OVERLAP_SCRIPT, file], async () => {
      await postJson(`${mount.emulator.url}/_emulator/files/delete`, { path: '/replaced.bin' });
      await postJson(`${mount.emulator.url}/_emulator/files/write`, {
        path: '/replaced.bin',
        content_base64: replacement.toString('base64'),
        client_modified: '2020-01-02T03:04:05Z',
      });
      // Same size as before, so the kernel's size does not cut either handle short.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const result = await run('stat', ['-c', '%Y', file]);
        if (result.stdout.trim() === String(Date.parse('2020-01-02T03:04:05Z') / 1000)) break;
        if (Date.now() > deadline) throw new Error('the replacement did not show through the mount');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    });
    const [oldHash, newHash] = JSON.parse(line) as [string, string];
    const mixed = sha256(Buffer.concat([replaced.subarray(0, MIB), replacement.subarray(MIB)]));
    expect(newHash).toBe(sha256(replacement));
    expect(oldHash, 'handle A read the new file past its first MiB').not.toBe(mixed);
    expect(oldHash).toBe(sha256(replaced));
  }, 30_000);

  // Defect: while a handle of a file deleted on Dropbox stays open, a new file cannot be created at
  // its path: `echo > path` fails with ENOENT because getattr keeps returning the old file.
  it('create at path of deleted open file', async () => {
    const file = path.join(mount.mountpoint, 'gone.txt');
    const line = await runWithPause(['-c', HOLD_AND_RUN_SCRIPT, file, `echo new > '${file}'`], async () => {
      await postJson(`${mount.emulator.url}/_emulator/files/delete`, { path: '/gone.txt' });
      await waitUntilUnlisted('gone.txt');
      // Past the kernel's 1 s attribute and entry cache.
      await new Promise((resolve) => setTimeout(resolve, 1500));
    });
    const [code, stderr] = JSON.parse(line) as [number, string];
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('new\n');
    // The new file reaches Dropbox once its handle is released.
    const stored = path.join(mount.data, 'gone.txt');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await readFile(stored, 'utf8').catch(() => '')) !== 'new\n') {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await readFile(stored, 'utf8')).toBe('new\n');
  }, 30_000);
});

// Reads argv[1] in order from byte 0 in 64 KiB preads, the first one at argv[2] when given, and
// prints [bytes read, error or null].
const READ_IN_ORDER_SCRIPT = `
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
offset, error = 0, None
try:
    if len(sys.argv) > 2:
        os.pread(fd, 65536, int(sys.argv[2]))
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk: break
        offset += len(chunk)
except OSError as e:
    error = e.strerror
os.close(fd)
print(json.dumps([offset, error]))
`;

// Opens every file in argv[2:] twice and reads all handles round-robin, 64 KiB per handle every
// argv[1] seconds, until each has read its file. Prints "done".
const SLOW_READERS_SCRIPT = `
import os, sys, time
pause = float(sys.argv[1])
fds = [os.open(p, os.O_RDONLY) for p in sys.argv[2:] for _ in range(2)]
offsets = [0] * len(fds)
live = set(range(len(fds)))
while live:
    for i in list(live):
        if not os.pread(fds[i], 65536, offsets[i]):
            live.discard(i)
        offsets[i] += 65536
    time.sleep(pause)
for fd in fds: os.close(fd)
print("done")
`;

describe.skipIf(!fuse.ok)('read-breaker-3 attacks that found nothing', () => {
  let mount: Mount;
  const plain = seededBytes(3 * MIB + 123, 41);
  const small = seededBytes(700 * KIB + 5, 42);
  const corrupt = seededBytes(3 * MIB, 43);
  const corruptSkip = seededBytes(3 * MIB, 44);

  beforeAll(async () => {
    mount = await startMount(
      'dropbox-mount-rb3-attacks-',
      { 'plain.bin': plain, 'small.bin': small, 'corrupt.bin': corrupt, 'corrupt-skip.bin': corruptSkip },
      ['--dir-cache-time', '1'],
    );
  }, 60_000);

  afterAll(async () => {
    await stopMount(mount);
  });

  it('unchanged file keeps page cache', async () => {
    const file = path.join(mount.mountpoint, 'plain.bin');
    const readWhole = async (): Promise<[number, string]> => {
      const result = await run('/usr/bin/python3', ['-c', READ_WHOLE_SCRIPT, file]);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as [number, string];
    };
    expect(await readWhole()).toEqual([plain.length, sha256(plain)]);
    // O_DIRECT handles, a storm of opens and failed opens of a missing name must not mark the
    // file as mixed.
    const storm = await run('/usr/bin/python3', [
      '-c',
      `import os, sys
p = sys.argv[1]
for i in range(200):
    fd = os.open(p, os.O_RDONLY | (os.O_DIRECT if i % 7 == 0 else 0))
    os.pread(fd, 4096, (i * 4096) % (1 << 20)) if i % 7 else None
    os.close(fd)
    try: os.open(p + '.missing', os.O_RDONLY)
    except FileNotFoundError: pass
`,
      file,
    ]);
    expect(storm.code, storm.stderr).toBe(0);
    const before = await downloads(mount.emulator);
    expect(await readWhole()).toEqual([plain.length, sha256(plain)]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await readWhole()).toEqual([plain.length, sha256(plain)]);
    expect(await downloads(mount.emulator)).toBe(before);
  }, 30_000);

  it('first reads near 512 KiB', async () => {
    const file = path.join(mount.mountpoint, 'small.bin');
    // Each case opens a new handle, so each pread is the first read of its handle.
    const cases: Array<[number, number]> = [
      [512 * KIB, 4096],
      [512 * KIB + 1, 4096],
      [small.length - 5, 4096],
      [small.length - 4096, 4096],
      [small.length, 4096],
    ];
    const result = await run('/usr/bin/python3', [
      '-c',
      FIRST_READS_SCRIPT,
      file,
      ...cases.map(([offset, length]) => `${offset}:${length}`),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const hashes = JSON.parse(result.stdout) as string[];
    cases.forEach(([offset, length], i) => {
      expect(hashes[i], `first read at ${offset}`).toBe(sha256(small.subarray(offset, offset + length)));
    });
  });

  it('hash check after first read away from 0', async () => {
    for (const [name, firstRead] of [
      ['corrupt.bin', undefined],
      ['corrupt-skip.bin', String(300 * KIB)],
    ] as const) {
      const diskPath = path.join(mount.data, name);
      const reference = `${diskPath}.mtime`;
      await writeFile(reference, '');
      expect((await run('touch', ['-r', diskPath, reference])).code).toBe(0);
      const handle = await open(diskPath, 'r+');
      await handle.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, 2 * MIB + 17);
      await handle.close();
      expect((await run('touch', ['-r', reference, diskPath])).code).toBe(0);
      await rm(reference);
      const args = ['-c', READ_IN_ORDER_SCRIPT, path.join(mount.mountpoint, name)];
      if (firstRead !== undefined) args.push(firstRead);
      const result = await run('/usr/bin/python3', args);
      expect(result.code, result.stderr).toBe(0);
      const [, error] = JSON.parse(result.stdout) as [number, string | null];
      expect(error, name).toBe('Input/output error');
    }
  }, 30_000);
});

describe.skipIf(!fuse.ok)('read-breaker-3 memory of slow readers', () => {
  let mount: Mount;
  const names = Array.from({ length: 16 }, (_, i) => `slow-${i}.bin`);

  beforeAll(async () => {
    const files: Record<string, Buffer> = {};
    names.forEach((name, i) => (files[name] = seededBytes(6 * MIB, 100 + i)));
    mount = await startMount('dropbox-mount-rb3-memory-', files, ['--memory-limit', '16']);
  }, 60_000);

  afterAll(async () => {
    await stopMount(mount);
  });

  it('32 slow readers keep RSS bounded', async () => {
    const pid = mount.daemon.process.pid!;
    const rssMib = async (): Promise<number> => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    };
    const baseline = await rssMib();
    let peak = baseline;
    const sampler = setInterval(() => {
      void rssMib().then((rss) => (peak = Math.max(peak, rss)));
    }, 100);
    try {
      const result = await run(
        '/usr/bin/python3',
        ['-c', SLOW_READERS_SCRIPT, '0.04', ...names.map((name) => path.join(mount.mountpoint, name))],
        { timeoutMs: 30_000 },
      );
      expect(result.code, result.stderr).toBe(0);
    } finally {
      clearInterval(sampler);
    }
    console.log(`daemon RSS: baseline ${baseline.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`);
    // 32 bodies each 16 MiB ahead would add 512 MiB.
    expect(peak - baseline).toBeLessThan(120);
  }, 40_000);
});
