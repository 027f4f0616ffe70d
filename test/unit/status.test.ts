import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { LastErrorRecorder } from '../../src/status/last-error.js';
import { formatStatus, type StatusSnapshot } from '../../src/status/snapshot.js';
import { startStatusServer } from '../../src/status/server.js';
import { statusSocketDir, statusSocketPath } from '../../src/status/socket-path.js';

const SNAPSHOT: StatusSnapshot = {
  mountpoint: '/mnt/dropbox',
  pid: 42,
  uptimeSeconds: 3725,
  apiCalls: { 'files/list_folder': 2, 'files/download': 3 },
  metadataCache: { hits: 10, misses: 2 },
  blockCache: { hits: 1, misses: 4 },
  bytesRead: 3 * 1024 * 1024,
  openHandles: 1,
  memory: { usedBytes: 512, peakBytes: 2048, limitBytes: 128 * 1024 * 1024 },
  uploadsPending: 0,
  spool: { usedBytes: 0, limitBytes: 0 },
  lastError: null,
};

function readSocket(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = createConnection(socketPath);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('status socket path', () => {
  it('uses XDG_RUNTIME_DIR when set', () => {
    expect(statusSocketDir({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/dropbox-mount');
  });

  it('names the socket after the mountpoint', () => {
    const env = { XDG_RUNTIME_DIR: '/run/user/1000' };
    const first = statusSocketPath('/mnt/a', env);
    expect(first).toMatch(/^\/run\/user\/1000\/dropbox-mount\/[0-9a-f]{16}\.sock$/);
    expect(statusSocketPath('/mnt/a/', env)).toBe(first);
    expect(statusSocketPath('/mnt/b', env)).not.toBe(first);
  });
});

describe('status server', () => {
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-status-'));
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('serves one snapshot per connection', async () => {
    const socketPath = path.join(workDir, 'run', 'a.sock');
    const server = await startStatusServer(socketPath, () => SNAPSHOT, silentLogger());
    expect(JSON.parse(await readSocket(socketPath))).toEqual(SNAPSHOT);
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(socketPath))).mode & 0o777).toBe(0o700);
    await server.close();
    await expect(stat(socketPath)).rejects.toThrow('ENOENT');
  });

  it('replaces a stale socket', async () => {
    const socketPath = path.join(workDir, 'run', 'b.sock');
    await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
    // A process killed with SIGKILL leaves its socket file behind, with nothing listening.
    const listener = spawn(process.execPath, [
      '-e',
      "require('net').createServer().listen(process.argv[1], () => console.log('listening'))",
      socketPath,
    ]);
    await new Promise((resolve) => listener.stdout.once('data', resolve));
    listener.kill('SIGKILL');
    await new Promise((resolve) => listener.once('exit', resolve));
    expect((await stat(socketPath)).isSocket()).toBe(true);
    const again = await startStatusServer(socketPath, () => ({ ...SNAPSHOT, pid: 7 }), silentLogger());
    expect(JSON.parse(await readSocket(socketPath)).pid).toBe(7);
    await again.close();
  });

  it('rejects a path that is not a socket', async () => {
    const filePath = path.join(workDir, 'run', 'plain');
    await writeFile(filePath, 'x');
    await expect(startStatusServer(filePath, () => SNAPSHOT, silentLogger())).rejects.toThrow('is not a socket');
  });
});

describe('formatStatus', () => {
  it('prints one aligned line per figure', () => {
    const text = formatStatus(SNAPSHOT);
    expect(text).toMatch(/^uptime\s+1h 2m 5s$/m);
    expect(text).toMatch(/^api calls\s+5$/m);
    expect(text).toMatch(/^ {2}files\/download\s+3$/m);
    expect(text).toMatch(/^bytes read\s+3\.0 MiB \(3145728 bytes\)$/m);
    expect(text).toMatch(/^last error\s+none$/m);
  });
});

describe('LastErrorRecorder', () => {
  it('ignores levels below warn', () => {
    const recorder = new LastErrorRecorder();
    recorder.record(30, [{ path: '/a' }, 'mounted']);
    expect(recorder.last).toBeUndefined();
  });

  it('records message and fields', () => {
    const recorder = new LastErrorRecorder();
    recorder.record(50, [{ err: 'Error: boom', route: 'files/download' }, 'read failed']);
    expect(recorder.last?.level).toBe('error');
    expect(recorder.last?.message).toBe('read failed (err=Error: boom, route=files/download)');
  });
});
