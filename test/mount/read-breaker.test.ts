// Attacks on the read path through a real mount. The two `defects` blocks contain one test per
// defect found, each of which failed before its fix. The last block contains attacks that found
// nothing and pass, kept as regression tests.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  fuseAvailable,
  run,
  runPausedPython,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
} from '../helpers/processes.js';
import { SeededRandom } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping read-breaker mount tests: ${fuse.reason}`);

const KIB = 1024;
const MIB = 1024 * 1024;
// The daemon's op deadline in these tests, so that a black-holed download fails fast.
const OP_TIMEOUT_SECONDS = 3;

// Runs reads on one descriptor and prints one JSON line: per step, [length, sha256] of the
// bytes read or ["errno", N]. A step is OFFSET:LENGTH (one pread) or seq:STEP (read the whole
// file in order in STEP-byte preads). argv: path, "direct" or "buffered", steps...
const READ_SCRIPT = `
import hashlib, json, os, sys
path, mode, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
flags = os.O_RDONLY | (os.O_DIRECT if mode == "direct" else 0)
fd = os.open(path, flags)
out = []
for step in steps:
    a, b = step.split(":")
    try:
        if a == "seq":
            data = bytearray()
            while True:
                chunk = os.pread(fd, int(b), len(data))
                if not chunk: break
                data += chunk
        else:
            data = os.pread(fd, int(b), int(a))
        out.append([len(data), hashlib.sha256(data).hexdigest()])
    except OSError as e:
        out.append(["errno", e.errno])
print(json.dumps(out))
`;

// Flips 16 bytes at an offset of a file in the emulator's data folder and restores its mtime
// to the nanosecond, so the emulator keeps its rev and content hash but serves other bytes.
const CORRUPT_SCRIPT = `
import os, sys
path, offset = sys.argv[1], int(sys.argv[2])
st = os.stat(path)
with open(path, "r+b") as f:
    f.seek(offset); data = f.read(16); f.seek(offset); f.write(bytes(x ^ 0xFF for x in data))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
`;

// Checks every read of several files against their source: whole file in odd steps, reads
// at and past EOF, reads crossing EOF, the file backwards in 4097-byte steps and random
// preads of odd lengths. Prints the number of mismatches and the first few.
const SHAPES_SCRIPT = `
import os, random, sys
mount, source, mode, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
flags = os.O_RDONLY | (os.O_DIRECT if mode == "direct" else 0)
bad = []
for name in names:
    src = open(os.path.join(source, name), "rb").read()
    size = len(src)
    fd = os.open(os.path.join(mount, name), flags)
    rng = random.Random(name)
    try:
        data = bytearray()
        while True:
            chunk = os.pread(fd, 65549, len(data))
            if not chunk: break
            data += chunk
        if bytes(data) != src: bad.append((name, "sequential", len(data)))
        for offset, length in ((size, 100), (size + 5, 100), (max(0, size - 1), 1000)):
            if os.pread(fd, length, offset) != src[offset:offset + length]:
                bad.append((name, "eof", offset, length))
        offset = size
        while offset > 0:
            length = min(offset, 4097)
            offset -= length
            if os.pread(fd, length, offset) != src[offset:offset + length]:
                bad.append((name, "backwards", offset)); break
        for _ in range(100):
            offset = rng.randrange(0, size + 10) if size else 0
            length = rng.choice([0, 1, 3, 4095, 4097, 65537, 131071, 131073, 300001, 1 << 20])
            if os.pread(fd, length, offset) != src[offset:offset + length]:
                bad.append((name, "random", offset, length)); break
    except OSError as e:
        bad.append((name, "errno", e.errno))
    os.close(fd)
print(len(bad), bad[:5])
`;

// Twelve threads read files through shared and private descriptors at once, random preads
// and whole files in order, and compare every read with the source.
const THREADS_SCRIPT = `
import os, random, sys, threading
mount, source, names = sys.argv[1], sys.argv[2], sys.argv[3:]
srcs = {n: open(os.path.join(source, n), "rb").read() for n in names}
shared = {n: os.open(os.path.join(mount, n), os.O_RDONLY | os.O_DIRECT) for n in names}
bad = []
def worker(seed):
    rng = random.Random(seed)
    for _ in range(40):
        name = rng.choice(names); src = srcs[name]; size = len(src)
        own = rng.random() < 0.7
        fd = os.open(os.path.join(mount, name), os.O_RDONLY | os.O_DIRECT) if own else shared[name]
        try:
            if rng.random() < 0.2:
                data = bytearray(); step = rng.choice([4096, 77777, 131072, 1 << 20])
                while True:
                    chunk = os.pread(fd, step, len(data))
                    if not chunk: break
                    data += chunk
                if bytes(data) != src: bad.append(("sequential", name, seed))
            else:
                for _ in range(5):
                    offset = rng.randrange(0, size + 3) if size else 0
                    length = rng.choice([1, 4097, 131073, 500000])
                    if os.pread(fd, length, offset) != src[offset:offset + length]:
                        bad.append(("random", name, seed, offset, length))
        except OSError as e:
            bad.append(("errno", name, seed, e.errno))
        if own: os.close(fd)
threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(12)]
for t in threads: t.start()
for t in threads: t.join()
print(len(bad), bad[:5])
`;

type StepResult = [number, string] | ['errno', number];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function seededBytes(size: number, seed: number): Buffer {
  const random = new SeededRandom(seed);
  const out = Buffer.alloc(Math.ceil(size / 4) * 4);
  for (let i = 0; i < out.length; i += 4) out.writeUInt32LE(random.nextUint32(), i);
  return out.subarray(0, size);
}

/** Returns the [length, sha256] that READ_SCRIPT prints for `bytes`. */
function expected(bytes: Buffer): StepResult {
  return [bytes.length, sha256(bytes)];
}

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
}

describe.skipIf(!fuse.ok)('read path attacks', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  const contents = new Map<string, Buffer>();

  async function readSteps(name: string, mode: 'direct' | 'buffered', steps: string[]): Promise<StepResult[]> {
    const result = await run('/usr/bin/python3', ['-c', READ_SCRIPT, path.join(mountpoint, name), mode, ...steps], {
      timeoutMs: 20_000,
    });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as StepResult[];
  }

  function content(name: string): Buffer {
    const bytes = contents.get(name);
    if (bytes === undefined) throw new Error(`no source content for ${name}`);
    return bytes;
  }

  async function downloads(): Promise<{ path: string; range: string | undefined }[]> {
    return (await emulator.calls())
      .filter((call) => call.route === 'files/download')
      .map((call) => ({ path: (call.arg as { path: string }).path, range: call.range }));
  }

  async function setFault(rule: Record<string, unknown>): Promise<void> {
    await postJson(`${emulator.url}/_emulator/faults`, { route: 'files/download', ...rule });
  }

  // Replaces a file through the emulator's control route, which keeps the old revision.
  async function replaceRemotely(name: string, bytes: Buffer): Promise<void> {
    await postJson(`${emulator.url}/_emulator/files/write`, { path: `/${name}`, content_base64: bytes.toString('base64') });
  }

  // Waits until the mount reports `size` for the file, so the daemon has seen a remote change.
  async function waitForSize(name: string, size: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const result = await run('stat', ['-c', '%s', path.join(mountpoint, name)]);
      if (Number(result.stdout.trim()) === size) return;
      if (Date.now() > deadline) throw new Error(`${name} did not reach size ${size} through the mount`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-read-breaker-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(source);
    await mkdir(mountpoint);
    const files: [string, number][] = [
      ['skip.bin', 3 * MIB + 99],
      ['tail.bin', 1536 * KIB],
      ['random-first.bin', 3 * MIB],
      ['cached-block.bin', 6 * MIB + 5],
      ['corrupt-control.bin', 3 * MIB + 777],
      ['old-handle.bin', 2 * MIB],
      ['new-handle.bin', 2 * MIB],
      ['three-cuts.bin', 3 * MIB],
      ['empty.bin', 0],
      ['one.bin', 1],
      ['block.bin', 128 * KIB],
      ['four.bin', 4 * MIB],
      ['four-less.bin', 4 * MIB - 1],
      ['four-more.bin', 4 * MIB + 1],
      ['eight.bin', 8 * MIB + 12_345],
      ['cuts.bin', 5 * MIB + 3],
      ['errors.bin', 5 * MIB + 3],
      ['block-cuts.bin', 3 * MIB],
      ['black-hole.bin', 3 * MIB],
      ['deleted.bin', 3 * MIB],
      ['pressure.bin', 3 * MIB],
      ['shrink.bin', 2 * MIB],
    ];
    let seed = 1;
    for (const [name, size] of files) {
      const bytes = seededBytes(size, seed++);
      contents.set(name, bytes);
      await writeFile(path.join(source, name), bytes);
    }
    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({
      mountpoint,
      config: configFile,
      extraArgs: ['--dir-cache-time', '1', '--op-timeout', String(OP_TIMEOUT_SECONDS)],
    });
  });

  afterEach(async () => {
    if (emulator !== undefined) await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  describe('defects', () => {
    // Defect: `dd bs=1M skip=1` on a newly opened file prints nothing instead of the second MiB.
    it('first read at 1 MiB returns bytes', async () => {
      const bytes = content('skip.bin');
      const dd = await run('sh', ['-c', 'dd if="$1" bs=1M skip=1 count=1 status=none | sha256sum', 'sh', path.join(mountpoint, 'skip.bin')]);
      expect(dd.code, dd.stderr).toBe(0);
      expect(dd.stdout.split(' ')[0]).toBe(sha256(bytes.subarray(MIB, 2 * MIB)));
    });

    // Defect: `tail -c 512K` of a 1.5 MiB file prints nothing, because its read starts at 1 MiB.
    it('tail of a 1.5 MiB file', async () => {
      const bytes = content('tail.bin');
      const tail = await run('sh', ['-c', 'tail -c 524288 "$1" | sha256sum', 'sh', path.join(mountpoint, 'tail.bin')]);
      expect(tail.code, tail.stderr).toBe(0);
      expect(tail.stdout.split(' ')[0]).toBe(sha256(bytes.subarray(MIB)));
    });

    // Defect: a 4 KiB read at 1.5 MiB on a new handle downloads bytes 0 to EOF in two requests
    // instead of the one 128 KiB block that SEMANTICS.md promises for a random read.
    it('random first read costs one block', async () => {
      const bytes = content('random-first.bin');
      await emulator.clearCalls();
      const results = await readSteps('random-first.bin', 'direct', [`${1536 * KIB}:4096`]);
      expect(results[0]).toEqual(expected(bytes.subarray(1536 * KIB, 1536 * KIB + 4096)));
      const calls = await downloads();
      expect(calls).toHaveLength(1);
      expect(calls[0]?.range).toBe(`bytes=${1536 * KIB}-${1536 * KIB + 128 * KIB - 1}`);
    });

    // Defect: a sequential read that meets a block cached by another read skips the content hash
    // check, so bytes that do not match Dropbox's content_hash are returned without EIO.
    it('hash check survives cached block', async () => {
      const name = 'cached-block.bin';
      const corrupt = await run('/usr/bin/python3', ['-c', CORRUPT_SCRIPT, path.join(source, name), String(MIB + 100)]);
      expect(corrupt.code, corrupt.stderr).toBe(0);
      // A read far away first, so the read at 1 MiB is random and caches the block at 1 MiB.
      const random = await readSteps(name, 'direct', [`${5 * MIB}:4096`, `${MIB + 1000}:4096`]);
      expect(random.map((step) => step[0])).toEqual([4096, 4096]);
      const whole = await readSteps(name, 'direct', ['seq:131072']);
      expect(whole[0]).toEqual(['errno', os.constants.errno.EIO]);
    });

    // Defect: a handle opened before a remote replace returns bytes of the new revision, which
    // another handle left in the kernel page cache, after bytes of the one it opened.
    it('old handle never sees new revision', async () => {
      const name = 'old-handle.bin';
      const original = content(name);
      const replacement = seededBytes(original.length + 4096, 901);
      const script = `
import hashlib, os, sys, json
path = sys.argv[1]
a = os.open(path, os.O_RDONLY)
head = os.pread(a, 1 << 20, 0)
print(hashlib.sha256(head).hexdigest(), flush=True)
sys.stdin.readline()
b = os.open(path, os.O_RDONLY)
whole = bytearray()
while True:
    chunk = os.pread(b, 65536, len(whole))
    if not chunk: break
    whole += chunk
rest = bytearray()
while True:
    chunk = os.pread(a, 65536, len(head) + len(rest))
    if not chunk: break
    rest += chunk
print(json.dumps([hashlib.sha256(head + rest).hexdigest(), len(head) + len(rest), hashlib.sha256(whole).hexdigest()]))
`;
      const output = await holdOpenAcrossReplace(script, name, replacement);
      const [oldHash, oldLength, newHash] = JSON.parse(output) as [string, number, string];
      expect(newHash).toBe(sha256(replacement));
      expect(oldLength).toBe(original.length);
      expect(oldHash).toBe(sha256(original));
    });

    // Defect: a handle opened after a remote replace returns bytes of the old revision, left in
    // the page cache by a handle opened before it, and ends at the old size.
    it('new handle never sees old revision', async () => {
      const name = 'new-handle.bin';
      const original = content(name);
      const replacement = seededBytes(original.length + 4096, 902);
      const script = `
import hashlib, os, sys, json
path = sys.argv[1]
a = os.open(path, os.O_RDONLY)
head = os.pread(a, 1 << 20, 0)
print(hashlib.sha256(head).hexdigest(), flush=True)
sys.stdin.readline()
b = os.open(path, os.O_RDONLY)
rest = bytearray()
while True:
    chunk = os.pread(a, 65536, len(head) + len(rest))
    if not chunk: break
    rest += chunk
whole = bytearray()
while True:
    chunk = os.pread(b, 65536, len(whole))
    if not chunk: break
    whole += chunk
print(json.dumps([hashlib.sha256(head + rest).hexdigest(), len(whole), hashlib.sha256(whole).hexdigest()]))
`;
      const output = await holdOpenAcrossReplace(script, name, replacement);
      const [oldHash, newLength, newHash] = JSON.parse(output) as [string, number, string];
      expect(oldHash).toBe(sha256(original));
      expect(newLength).toBe(replacement.length);
      expect(newHash).toBe(sha256(replacement));
    });

    // Defect: a handle opened before the file shrank remotely gets EOF at the new size, so it
    // loses the tail of the revision it opened.
    it('old handle keeps size after shrink', async () => {
      const name = 'shrink.bin';
      const original = content(name);
      const replacement = seededBytes(MIB, 903);
      const script = `
import hashlib, os, sys, json
a = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
head = os.pread(a, 4096, 0)
print("ready", flush=True)
sys.stdin.readline()
rest = bytearray()
while True:
    chunk = os.pread(a, 131072, len(head) + len(rest))
    if not chunk: break
    rest += chunk
print(json.dumps([len(head) + len(rest), hashlib.sha256(head + rest).hexdigest()]))
`;
      const output = await holdOpenAcrossReplace(script, name, replacement);
      expect(JSON.parse(output)).toEqual(expected(original));
    });

    // Defect: SEMANTICS.md states that a read resumes up to 3 times in a row before EIO, but a
    // random read whose block download is cut 3 times in a row fails with EIO.
    it('read survives three cuts in a row', async () => {
      const bytes = content('three-cuts.bin');
      const offset = 2 * MIB + 5000;
      await setFault({ fault: 'cut-after', bytes: 1000, times: 3 });
      const results = await readSteps('three-cuts.bin', 'direct', [`${offset}:5000`]);
      expect(results[0]).toEqual(expected(bytes.subarray(offset, offset + 5000)));
    });
  });

  describe('defects under memory pressure', () => {
    let smallMount: string;
    let smallDaemon: DaemonProcess;

    beforeAll(async () => {
      smallMount = path.join(workDir, 'mnt-small');
      await mkdir(smallMount);
      smallDaemon = await spawnDaemon({
        mountpoint: smallMount,
        config: path.join(workDir, 'config.json'),
        extraArgs: ['--memory-limit', '8', '--cache-dir', path.join(workDir, 'write-cache-small')],
      });
    });

    afterAll(async () => {
      await smallDaemon?.stop();
    });

    // Defect: with the memory budget over its limit, a 4 KiB read at 1.5 MiB on a new handle
    // fails with EIO, because each retry opens the range 0 to 1 MiB again.
    it('random read under pressure', async () => {
      // Twelve handles that read 4 KiB each hold 512 KiB ahead apiece, which puts the 8 MiB
      // budget over its limit while they stay open.
      const script = `
import os, sys
mount, offset = sys.argv[1], int(sys.argv[2])
open_descriptors = []
for _ in range(12):
    fd = os.open(os.path.join(mount, "eight.bin"), os.O_RDONLY | os.O_DIRECT)
    os.pread(fd, 4096, 0)
    open_descriptors.append(fd)
fd = os.open(os.path.join(mount, "pressure.bin"), os.O_RDONLY | os.O_DIRECT)
try:
    print(os.pread(fd, 4096, offset).hex())
except OSError as e:
    print("errno", e.errno)
`;
      const offset = 1536 * KIB;
      const result = await run('/usr/bin/python3', ['-c', script, smallMount, String(offset)], { timeoutMs: 20_000 });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(content('pressure.bin').subarray(offset, offset + 4096).toString('hex'));
    });
  });

  // Runs `script` on the file and returns the last line it prints. The script must print one
  // line after its first read and then wait for a line on stdin, and the file is replaced
  // remotely in between.
  async function holdOpenAcrossReplace(script: string, name: string, replacement: Buffer): Promise<string> {
    const result = await runPausedPython(['-c', script, path.join(mountpoint, name)], async () => {
      await replaceRemotely(name, replacement);
      await waitForSize(name, replacement.length);
    });
    expect(result.stderr).toBe('');
    return result.lastLine;
  }

  describe('attacks that found nothing', () => {
    const shapes = ['empty.bin', 'one.bin', 'block.bin', 'four.bin', 'four-less.bin', 'four-more.bin', 'eight.bin'];

    it.each(['direct', 'buffered'])('odd reads and sizes, %s', async (mode) => {
      const result = await run('/usr/bin/python3', ['-c', SHAPES_SCRIPT, mountpoint, source, mode, ...shapes], {
        timeoutMs: 30_000,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe('0 []');
    });

    it('12 threads on shared and own handles', async () => {
      const result = await run('/usr/bin/python3', ['-c', THREADS_SCRIPT, mountpoint, source, ...shapes], {
        timeoutMs: 30_000,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe('0 []');
    });

    it('mmap of whole file', async () => {
      const script = `
import mmap, sys, hashlib
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(hashlib.sha256(m[:]).hexdigest())
`;
      const result = await run('/usr/bin/python3', ['-c', script, path.join(mountpoint, 'four-more.bin')]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(sha256(content('four-more.bin')));
    });

    it('cut bodies resume with exact bytes', async () => {
      await setFault({ fault: 'cut-after', bytes: 300_000, times: 6 });
      const results = await readSteps('cuts.bin', 'direct', ['seq:131072']);
      expect(results[0]).toEqual(expected(content('cuts.bin')));
    });

    it('503 and 429 are retried', async () => {
      await setFault({ fault: '503', times: 2 });
      await setFault({ fault: '429', times: 1, retryAfterSeconds: 1 });
      const results = await readSteps('errors.bin', 'direct', ['seq:131072']);
      expect(results[0]).toEqual(expected(content('errors.bin')));
    });

    it('endless cuts fail with EIO', async () => {
      await setFault({ fault: 'cut-after', bytes: 1000 });
      const results = await readSteps('block-cuts.bin', 'direct', [`${2 * MIB + 5000}:5000`, '0:4096']);
      expect(results[0]).toEqual(['errno', os.constants.errno.EIO]);
      expect(results[1]).toEqual(['errno', os.constants.errno.EIO]);
    });

    it('black-holed download fails within deadline', async () => {
      await setFault({ fault: 'black-hole', times: 1 });
      const started = Date.now();
      const results = await readSteps('black-hole.bin', 'direct', [`${2 * MIB}:4096`]);
      expect(results[0]).toEqual(['errno', os.constants.errno.EIO]);
      expect(Date.now() - started).toBeLessThan((OP_TIMEOUT_SECONDS + 5) * 1000);
    });

    it('corrupt content fails sequential read', async () => {
      const name = 'corrupt-control.bin';
      const corrupt = await run('/usr/bin/python3', ['-c', CORRUPT_SCRIPT, path.join(source, name), String(2 * MIB)]);
      expect(corrupt.code, corrupt.stderr).toBe(0);
      const results = await readSteps(name, 'direct', ['seq:131072']);
      expect(results[0]).toEqual(['errno', os.constants.errno.EIO]);
    });

    it('deleted rev fails with ESTALE', async () => {
      const name = 'deleted.bin';
      const script = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
os.pread(fd, 100, 0)
print("ready", flush=True)
sys.stdin.readline()
try:
    os.pread(fd, 4096, 2900000); print("read")
except OSError as e:
    print("errno", e.errno)
`;
        const result = await runPausedPython(['-c', script, path.join(mountpoint, name)], async () => {
        // Removed from the data folder by hand, so the emulator keeps no earlier revision.
        await rm(path.join(source, name));
        await new Promise((resolve) => setTimeout(resolve, 2500));
      });
      expect(result.lastLine).toBe(`errno ${os.constants.errno.ESTALE}`);
    });
  });
});
