// Files held open after a partial read keep their download streams, and each stream uses one
// keep-alive connection of the client's pool (64 per origin). Once the pool is full, every other
// request queues behind streams that only a close frees, so an unrelated `cat` or `ls` waits in
// uninterruptible sleep until the op timeout answers EIO.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
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

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping connection pool tests: ${fuse.reason}`);

// The client's undici Agent allows 64 connections per origin.
const HELD_FILES = 64;
// Sparse files, so they cost no disk. 16 MiB is more than loopback socket buffers take in,
// so a body that no reader consumes stays in flight.
const HELD_FILE_BYTES = 16 * 1024 * 1024;
const OP_TIMEOUT_SECONDS = 10;

// Opens every file named on the command line, reads 4 KiB of each, prints "holding N" and
// keeps them open until killed.
const HOLDER_SCRIPT = `
const { open } = require('node:fs/promises');
(async () => {
  const handles = [];
  for (const file of process.argv.slice(1)) {
    const handle = await open(file, 'r');
    await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    handles.push(handle);
  }
  process.stdout.write('holding ' + handles.length + '\\n');
  setInterval(() => {}, 60000);
})().catch((err) => {
  process.stdout.write('failed ' + err.code + '\\n');
  process.exit(1);
});
`;

function startHolder(files: string[]): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(process.execPath, ['-e', HOLDER_SCRIPT, ...files], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<string>((resolve) => {
    let text = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(text.trim());
    });
    child.once('exit', () => resolve(text.trim() || 'exited'));
  });
  return { child, ready };
}

describe.skipIf(!fuse.ok)('connection pool with many held files', () => {
  let workDir: string;
  let source: string;
  let mountpoint: string;
  let emulator: EmulatorProcess;
  let daemon: DaemonProcess;
  let holder: ChildProcess | undefined;
  const heldFiles: string[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-breaker-pool-'));
    source = path.join(workDir, 'data');
    mountpoint = path.join(workDir, 'mnt');
    await mkdir(path.join(source, 'held'), { recursive: true });
    await mkdir(path.join(source, 'other'), { recursive: true });
    await mkdir(mountpoint);
    for (let i = 0; i < HELD_FILES; i++) {
      const name = `held-${String(i).padStart(2, '0')}.bin`;
      const handle = await open(path.join(source, 'held', name), 'w');
      await handle.truncate(HELD_FILE_BYTES);
      await handle.close();
      heldFiles.push(path.join(mountpoint, 'held', name));
    }
    await writeFile(path.join(source, 'other', 'small.txt'), 'small file\n');

    const configFile = path.join(workDir, 'config.json');
    emulator = await spawnEmulator({ dataDir: source, configFile });
    daemon = await spawnDaemon({
      mountpoint,
      config: configFile,
      extraArgs: ['--op-timeout', String(OP_TIMEOUT_SECONDS)],
    });
  });

  afterAll(async () => {
    if (holder !== undefined && holder.exitCode === null && holder.signalCode === null) {
      holder.kill('SIGKILL');
    }
    await daemon?.stop();
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('cat succeeds with 64 held files', async () => {
    const started = startHolder(heldFiles);
    holder = started.child;
    expect(await started.ready).toBe(`holding ${HELD_FILES}`);

    const result = await run('cat', [path.join(mountpoint, 'other', 'small.txt')], {
      timeoutMs: (OP_TIMEOUT_SECONDS + 20) * 1000,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('small file\n');
  }, 120_000);
});
