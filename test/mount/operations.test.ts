// Operations features of a running mount: `df` returns at once while Dropbox cannot be reached,
// `dropbox-mount status` reads live figures over the status socket, `-o` sets the reported owner
// and modes, and with $NOTIFY_SOCKET set the daemon sends READY=1 and STOPPING=1.

import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { statusSocketPath } from '../../src/status/socket-path.js';
import {
  CLI_PATH,
  fuseAvailable,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorProcess,
} from '../helpers/processes.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping operations mount tests: ${fuse.reason}`);

async function commandRuns(command: string, args: string[]): Promise<boolean> {
  try {
    return (await run(command, args)).code === 0;
  } catch {
    return false;
  }
}

// The notify test needs systemd-notify, which the daemon runs, and python3 to receive.
const notifyTools =
  (await commandRuns('systemd-notify', ['--version'])) && (await commandRuns('python3', ['--version']));
if (!notifyTools) console.warn('skipping the systemd notify test: systemd-notify or python3 is missing');

const PLACEHOLDER_KIB = 2 ** 50 / 1024;

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${url} failed with status ${response.status}: ${await response.text()}`);
}

/** Runs `df -k MOUNT` and returns its elapsed time and the total size column in KiB. */
async function timedDf(mountpoint: string): Promise<{ ms: number; code: number | null; totalKib: number }> {
  const started = Date.now();
  const result = await run('df', ['-k', mountpoint], { timeoutMs: 15_000 });
  const ms = Date.now() - started;
  const fields = result.stdout.trim().split('\n').at(-1)?.split(/\s+/) ?? [];
  return { ms, code: result.code, totalKib: Number(fields[1]) };
}

describe.skipIf(!fuse.ok)('operations features on a mount', () => {
  let workDir: string;
  let source: string;
  let emulator: EmulatorProcess | undefined;
  let configFile: string;
  let mountCount = 0;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-ops-'));
    source = path.join(workDir, 'data');
    await mkdir(path.join(source, 'folder'), { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'alpha\n');
    await writeFile(path.join(source, 'folder', 'b.txt'), 'bravo bravo\n');
    configFile = path.join(workDir, 'config.json');
  });

  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.stop();
    await emulator?.stop();
    emulator = undefined;
  });

  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function startEmulator(): Promise<EmulatorProcess> {
    emulator = await spawnEmulator({ dataDir: source, configFile });
    return emulator;
  }

  async function mountDaemon(extraArgs: string[] = []): Promise<DaemonProcess> {
    mountCount++;
    const mountpoint = path.join(workDir, `mnt${mountCount}`);
    await mkdir(mountpoint);
    const daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs });
    daemons.push(daemon);
    return daemon;
  }

  it('df returns at once without quota', async () => {
    const server = await startEmulator();
    // The quota fetch at mount gets no response, so no value is known.
    await postJson(`${server.url}/_emulator/faults`, { route: 'users/get_space_usage', fault: 'black-hole', times: 100 });
    const daemon = await mountDaemon(['--log-level', 'debug']);
    const df = await timedDf(daemon.mountpoint);
    expect(df.code).toBe(0);
    expect(df.ms).toBeLessThan(2_000);
    expect(df.totalKib).toBe(PLACEHOLDER_KIB);
    const placeholderLines = daemon.logLines().filter((line) => String(line.msg).startsWith('space usage not known yet'));
    expect(placeholderLines.length).toBeGreaterThan(0);
  });

  it('df returns at once, server killed', async () => {
    const server = await startEmulator();
    await postJson(`${server.url}/_emulator/faults`, { route: 'users/get_space_usage', fault: 'black-hole', times: 100 });
    const daemon = await mountDaemon(['--no-prefetch', '--no-poll']);
    await server.stop();
    emulator = undefined;
    const df = await timedDf(daemon.mountpoint);
    expect(df.code).toBe(0);
    expect(df.ms).toBeLessThan(2_000);
  });

  it('df shows the quota fetched at mount', async () => {
    await startEmulator();
    const daemon = await mountDaemon();
    const df = await timedDf(daemon.mountpoint);
    expect(df.code).toBe(0);
    expect(df.totalKib).toBeGreaterThan(0);
    expect(df.totalKib).not.toBe(PLACEHOLDER_KIB);
  });

  it('status prints live figures', async () => {
    await startEmulator();
    const daemon = await mountDaemon();
    const cat = await run('cat', [path.join(daemon.mountpoint, 'folder', 'b.txt')]);
    expect(cat.stdout).toBe('bravo bravo\n');

    const json = await run('node', [CLI_PATH, 'status', daemon.mountpoint, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const status = JSON.parse(json.stdout);
    expect(status.mountpoint).toBe(daemon.mountpoint);
    expect(status.pid).toBe(daemon.process.pid);
    expect(status.apiCalls['files/download']).toBe(1);
    expect(status.bytesRead).toBe('bravo bravo\n'.length);
    expect(status.openHandles).toBe(0);
    expect(status.uploadsPending).toBe(0);
    expect(status.metadataCache.hits + status.metadataCache.misses).toBeGreaterThan(0);
    expect(status.memory.limitBytes).toBe(128 * 1024 * 1024);
    expect(status.memory.peakBytes).toBeGreaterThanOrEqual(status.memory.usedBytes);
    expect(status.lastError).toBeNull();
    expect(status.uptimeSeconds).toBeGreaterThanOrEqual(0);

    const socket = statusSocketPath(daemon.mountpoint);
    expect((await stat(socket)).mode & 0o777).toBe(0o600);

    const text = await run('node', [CLI_PATH, 'status', daemon.mountpoint]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^bytes read\s+12 B$/m);
    expect(text.stdout).toMatch(/^last error\s+none$/m);

    await daemon.stop();
    await expect(access(socket)).rejects.toThrow();
  });

  it('status shows the last error', async () => {
    const server = await startEmulator();
    const daemon = await mountDaemon(['--op-timeout', '2']);
    await postJson(`${server.url}/_emulator/faults`, { route: 'files/download', fault: 'black-hole', times: 1 });
    const cat = await run('cat', [path.join(daemon.mountpoint, 'a.txt')]);
    expect(cat.code).not.toBe(0);
    const json = await run('node', [CLI_PATH, 'status', daemon.mountpoint, '--json']);
    const status = JSON.parse(json.stdout);
    expect(status.lastError.level).toBe('warn');
    // The kernel retries the failed read, and that retry fails at once, so it is the last error.
    expect(status.lastError.message).toContain('EIO');
    expect(status.lastError.message).toContain('path=/a.txt');
    expect(Date.parse(status.lastError.time)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('status names a mountpoint nobody serves', async () => {
    const unserved = path.join(workDir, 'not-mounted');
    const result = await run('node', [CLI_PATH, 'status', unserved]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no dropbox-mount daemon serves ${unserved}`);
  });

  it('-o sets owner and masks modes', async () => {
    await startEmulator();
    const daemon = await mountDaemon(['-o', 'ro,uid=0,gid=0', '-o', 'umask=027,default_permissions']);
    const file = await stat(path.join(daemon.mountpoint, 'a.txt'));
    const folder = await stat(path.join(daemon.mountpoint, 'folder'));
    expect(file.uid).toBe(0);
    expect(file.gid).toBe(0);
    expect(file.mode & 0o777).toBe(0o440);
    expect(folder.mode & 0o777).toBe(0o550);
    const mounts = await run('grep', [daemon.mountpoint, '/proc/self/mounts']);
    expect(mounts.stdout).toContain('default_permissions');
  });

  it('-o uid sets a nonzero owner', async () => {
    await startEmulator();
    const daemon = await mountDaemon(['-o', 'uid=4321,gid=8765']);
    const file = await stat(path.join(daemon.mountpoint, 'a.txt'));
    expect(file.uid).toBe(4321);
    expect(file.gid).toBe(8765);
    expect(file.mode & 0o777).toBe(0o644);
  });

  it.skipIf(!notifyTools)('sends READY=1 and STOPPING=1', async () => {
    await startEmulator();
    const notifySocket = path.join(workDir, 'notify.sock');
    // Node has no Unix datagram sockets, so a short Python script receives in place of systemd.
    const receiver = spawn(
      'python3',
      [
        '-u',
        '-c',
        [
          'import socket, sys',
          's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
          's.bind(sys.argv[1])',
          'print("listening", flush=True)',
          'while True:',
          '    print(s.recv(4096).decode().replace("\\n", " "), flush=True)',
        ].join('\n'),
        notifySocket,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let received = '';
    receiver.stdout.setEncoding('utf8');
    receiver.stdout.on('data', (chunk: string) => (received += chunk));
    try {
      await waitFor(() => received.includes('listening'), 5_000);
      const previous = process.env.NOTIFY_SOCKET;
      process.env.NOTIFY_SOCKET = notifySocket;
      let daemon: DaemonProcess;
      try {
        daemon = await mountDaemon();
      } finally {
        if (previous === undefined) delete process.env.NOTIFY_SOCKET;
        else process.env.NOTIFY_SOCKET = previous;
      }
      await waitFor(() => received.includes('READY=1'), 10_000);
      const exit = await daemon.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(received).toContain('READY=1');
      expect(received).toContain('STOPPING=1');
      expect(daemon.logLines().filter((line) => line.msg === 'systemd-notify failed; systemd may not see the service state')).toEqual([]);
    } finally {
      receiver.kill('SIGTERM');
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
