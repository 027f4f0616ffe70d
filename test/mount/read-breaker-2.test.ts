// Reads made the way backup tools, shells and programs that share a descriptor make them. The
// cases are a descriptor kept open while its file is deleted or moved on Dropbox, tar of a tree
// with awkward names, forked readers sharing one file offset, O_DIRECT random reads and a
// repeated rsync --checksum.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
if (!fuse.ok) console.warn(`skipping read-breaker-2 mount tests: ${fuse.reason}`);

const MIB = 1024 * 1024;

// Opens argv[1] and runs the Dropbox API call given as argv[2..3] (URL, JSON body) with the
// access token in DROPBOX_ACCESS_TOKEN. It waits until the name is gone from its folder's listing
// and the kernel's 1 s attribute cache has expired.
// Then it reads the whole file through the descriptor it opened before, and prints one JSON line
// with the bytes read, their SHA-256, and the error of the read loop and of fstat, if any.
const KEEP_OPEN_SCRIPT = `
import hashlib, json, os, sys, time, urllib.request
path, url, body = sys.argv[1:4]
token = os.environ['DROPBOX_ACCESS_TOKEN']
fd = os.open(path, os.O_RDONLY)
request = urllib.request.Request(url, data=body.encode(), method='POST', headers={
    'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
urllib.request.urlopen(request).read()
folder, name = os.path.split(path)
deadline = time.time() + 10
while name in os.listdir(folder) and time.time() < deadline:
    time.sleep(0.1)
time.sleep(1.5)
result = {'removed': name not in os.listdir(folder), 'bytes': 0, 'read_error': None, 'fstat_error': None}
digest = hashlib.sha256()
try:
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        digest.update(chunk)
        result['bytes'] += len(chunk)
except OSError as error:
    result['read_error'] = error.strerror
result['sha256'] = digest.hexdigest()
try:
    result['fstat_size'] = os.fstat(fd).st_size
except OSError as error:
    result['fstat_error'] = error.strerror
print(json.dumps(result))
`;

// Forks 4 readers that share one descriptor, and so one file offset, and read it with plain
// read(2) until EOF. The file contains its own offsets as 8-byte big-endian numbers, so each
// chunk shows where it came from. Prints the chunks that were not consecutive numbers, the
// gaps between the chunks of all readers sorted by offset, and the end reached.
const FORKED_READERS_SCRIPT = `
import os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
read_end, write_end = os.pipe()
children = []
for k in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        ranges, bad = [], 0
        while True:
            chunk = os.read(fd, 8 * (1000 + 37 * k))
            if not chunk:
                break
            values = struct.unpack('>%dQ' % (len(chunk) // 8), chunk[: len(chunk) // 8 * 8])
            if len(chunk) % 8 or any(v != values[0] + 8 * i for i, v in enumerate(values)):
                bad += 1
                continue
            ranges.append((values[0], values[0] + len(chunk)))
        os.write(write_end, (repr((bad, ranges)) + '\\n').encode())
        os._exit(0)
    children.append(pid)
os.close(write_end)
output = b''
while True:
    part = os.read(read_end, 1 << 20)
    if not part:
        break
    output += part
for pid in children:
    os.waitpid(pid, 0)
bad, ranges = 0, []
for line in output.decode().splitlines():
    child_bad, child_ranges = eval(line)
    bad += child_bad
    ranges += child_ranges
ranges.sort()
end, gaps = 0, 0
for start, stop in ranges:
    if start != end:
        gaps += 1
    end = stop
print(bad, gaps, end, size)
`;

// 300 O_DIRECT preads of 4 KiB to 1 MiB at random 4 KiB-aligned offsets of argv[1], each
// compared with the same range of argv[2]. Prints the number of mismatches.
const DIRECT_READS_SCRIPT = `
import mmap, os, random, sys
mounted, source = sys.argv[1], sys.argv[2]
size = os.path.getsize(source)
fd = os.open(mounted, os.O_RDONLY | os.O_DIRECT)
sfd = os.open(source, os.O_RDONLY)
buffer = mmap.mmap(-1, 1 << 20)
rng = random.Random(1)
bad = 0
for _ in range(300):
    offset = rng.randrange(0, size // 4096 + 2) * 4096
    length = rng.choice([4096, 8192, 65536, 131072, 1 << 20])
    count = os.preadv(fd, [memoryview(buffer)[:length]], offset)
    if buffer[:count] != os.pread(sfd, length, offset):
        bad += 1
print(bad)
`;

// Names that quoting, URL encoding, JSON headers and Unicode normalization can each break.
const AWKWARD_NAMES = [
  'with space.txt',
  'caf\u00e9 nfc.txt',
  'cafe\u0301 nfd.txt',
  '\u65e5\u672c\u8a9e.txt',
  '\u{1f600} emoji.txt',
  `${'a'.repeat(200)}.txt`,
  '#hash%20?q.txt',
  'quote\'"x.txt',
  '-dash.txt',
  '[br]{c}.txt',
  'x+y=z&.txt',
];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function seededBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  new SeededRandom(seed).fill(out);
  return out;
}

// A file whose every 8 bytes are their own offset, big-endian.
function offsetBytes(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += 8) out.writeBigUInt64BE(BigInt(offset), offset);
  return out;
}

describe.skipIf(!fuse.ok)('read breaker 2 through the mount', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  let configFile: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-read-breaker-2-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(mountpoint, { recursive: true });
    await mkdir(path.join(source, 'tree', 'sub dir'), { recursive: true });
    const deep = path.join(source, 'tree', ...Array.from({ length: 30 }, (_, i) => `d${i}`));
    await mkdir(deep, { recursive: true });
    await writeFile(path.join(deep, 'leaf.txt'), 'deep\n');
    const random = new SeededRandom(5);
    for (let i = 0; i < 120; i++) {
      const folder = i % 2 === 0 ? 'tree' : path.join('tree', 'sub dir');
      await writeFile(path.join(source, folder, `f${i}.txt`), seededBytes(random.nextUint32() % 9000, i));
    }
    for (const [i, name] of AWKWARD_NAMES.entries()) {
      await writeFile(path.join(source, 'tree', name), seededBytes(100 + 37 * i, 1000 + i));
    }
    await writeFile(path.join(source, 'tree', 'large.bin'), seededBytes(9 * MIB + 5, 21));
    await writeFile(path.join(source, 'deleted.bin'), seededBytes(3 * MIB + 17, 22));
    await writeFile(path.join(source, 'moved.bin'), seededBytes(2 * MIB, 23));
    await writeFile(path.join(source, 'offsets.bin'), offsetBytes(8 * MIB));
    await writeFile(path.join(source, 'direct.bin'), seededBytes(20 * MIB + 5, 24));
    configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: ['--read-only'] });
  });

  afterAll(async () => {
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function accessToken(): Promise<string> {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: config.refreshToken ?? '',
      client_id: config.appKey ?? '',
      client_secret: config.appSecret ?? '',
    });
    const response = await fetch(`${emulator.url}/oauth2/token`, { method: 'POST', body: form });
    if (!response.ok) throw new Error(`token request failed: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { access_token: string }).access_token;
  }

  interface KeepOpenResult {
    removed: boolean;
    bytes: number;
    sha256: string;
    read_error: string | null;
    fstat_error: string | null;
  }

  // Runs KEEP_OPEN_SCRIPT on `name` with one Dropbox API call made by another client.
  async function readAfterRemoteChange(name: string, route: string, arg: unknown): Promise<KeepOpenResult> {
    const result = await run(
      '/usr/bin/python3',
      ['-c', KEEP_OPEN_SCRIPT, path.join(mountpoint, name), `${emulator.url}/2/${route}`, JSON.stringify(arg)],
      // The token goes in the environment, so that no command line shows it.
      { timeoutMs: 30_000, env: { ...process.env, DROPBOX_ACCESS_TOKEN: await accessToken() } },
    );
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as KeepOpenResult;
  }

  // ---------------------------------------------------------------------------------------------
  // Defects: each of these tests failed before its fix.

  // Defect: read(2) and fstat(2) on a descriptor opened before a remote delete fail with ENOENT.
  it('descriptor survives a remote delete', async () => {
    const expected = await readFile(path.join(source, 'deleted.bin'));
    const result = await readAfterRemoteChange('deleted.bin', 'files/delete_v2', { path: '/deleted.bin' });
    expect(result.removed).toBe(true);
    expect(result.read_error).toBeNull();
    expect(result.bytes).toBe(expected.length);
    expect(result.sha256).toBe(sha256(expected));
    expect(result.fstat_error).toBeNull();
  });

  // Defect: after a remote move, the read at EOF of an open descriptor fails with ENOENT.
  it('descriptor survives a remote move', async () => {
    const expected = await readFile(path.join(source, 'moved.bin'));
    const result = await readAfterRemoteChange('moved.bin', 'files/move_v2', {
      from_path: '/moved.bin',
      to_path: '/moved elsewhere.bin',
    });
    expect(result.removed).toBe(true);
    expect(result.read_error).toBeNull();
    expect(result.bytes).toBe(expected.length);
    expect(result.sha256).toBe(sha256(expected));
    expect(result.fstat_error).toBeNull();
  });

  // ---------------------------------------------------------------------------------------------
  // Attacks that found nothing, kept as regression tests.

  it('tar of a tree matches the source', async () => {
    const extracted = path.join(workDir, 'extracted');
    await mkdir(extracted);
    const tar = await run('sh', ['-c', 'tar cf - -C "$1" . | tar xf - -C "$2"', 'sh', path.join(mountpoint, 'tree'), extracted], {
      timeoutMs: 30_000,
    });
    expect(tar.code, tar.stderr).toBe(0);
    expect(tar.stderr).toBe('');
    const diff = await run('diff', ['-r', path.join(source, 'tree'), extracted]);
    expect(diff.code, diff.stdout).toBe(0);
    // tar -x sets each file's mtime from the archive, which took it from the mount.
    for (const name of [AWKWARD_NAMES[4] as string, 'large.bin']) {
      const original = await stat(path.join(source, 'tree', name));
      const copy = await stat(path.join(extracted, name));
      expect(Math.floor(copy.mtimeMs / 1000)).toBe(Math.floor(original.mtimeMs / 1000));
    }
  });

  it('rsync --checksum twice copies nothing the second time', async () => {
    const target = path.join(workDir, 'rsync-target');
    const from = `${path.join(mountpoint, 'tree')}/`;
    const first = await run('rsync', ['-a', '--checksum', from, target], { timeoutMs: 30_000 });
    expect(first.code, first.stderr).toBe(0);
    const diff = await run('diff', ['-r', path.join(source, 'tree'), target]);
    expect(diff.code, diff.stdout).toBe(0);
    const second = await run('rsync', ['-a', '--checksum', '--itemize-changes', from, target], { timeoutMs: 30_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe('');
  });

  it('forked readers sharing a descriptor read each byte once', async () => {
    const result = await run('/usr/bin/python3', ['-c', FORKED_READERS_SCRIPT, path.join(mountpoint, 'offsets.bin')], {
      timeoutMs: 30_000,
    });
    expect(result.code, result.stderr).toBe(0);
    const [bad, gaps, end, size] = result.stdout.trim().split(' ').map(Number);
    expect(bad).toBe(0);
    expect(gaps).toBe(0);
    expect(end).toBe(8 * MIB);
    expect(size).toBe(8 * MIB);
  });

  it('O_DIRECT random reads match the source', async () => {
    const result = await run(
      '/usr/bin/python3',
      ['-c', DIRECT_READS_SCRIPT, path.join(mountpoint, 'direct.bin'), path.join(source, 'direct.bin')],
      { timeoutMs: 30_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('0');
  });
});
