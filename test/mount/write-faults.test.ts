// Faults and recovery on the write path, through real mounts. The daemon retries server
// errors, a cut request body and write contention. Retries that run out give EIO and then a
// background retry, a full quota gives ENOSPC and a read-only folder EACCES. A restarted daemon
// commits the closed uploads left in its spool. Each test checks the bytes in the emulator's
// data folder, the errno the writing program got, the spool files in --cache-dir and the API
// calls.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  CLI_PATH,
  fuseAvailable,
  run,
  spawnDaemon,
  spawnEmulator,
  type DaemonProcess,
  type EmulatorCall,
  type EmulatorProcess,
} from '../helpers/processes.js';
import { SeededRandom, sha256File } from '../helpers/tree.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping write fault tests: ${fuse.reason}`);

const MIB = 1024 * 1024;
const C_LOCALE_ENV = { ...process.env, LC_ALL: 'C' };
const OLD_CONTENT = 'old content, replaced only by a whole commit\n';

/** Outcome of one writer script: the step that failed (or 'done') and the error it raised. */
interface WriteOutcome {
  step: 'read source' | 'open' | 'write' | 'close' | 'done';
  code?: string;
  message?: string;
}

// Copies `source` to `target` with one open, write loop and close, and prints the outcome as
// JSON, so the test gets the failing call and its errno. It runs in a child because a
// synchronous call on the mount from the test process would block the daemon's log pipe.
const WRITER_SCRIPT = `
const fs = require('node:fs');
const [target, source] = process.argv.slice(1);
let step = 'read source';
try {
  const bytes = fs.readFileSync(source);
  step = 'open';
  const fd = fs.openSync(target, 'w');
  step = 'write';
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
  step = 'close';
  fs.closeSync(fd);
  console.log(JSON.stringify({ step: 'done' }));
} catch (error) {
  console.log(JSON.stringify({ step, code: error.code, message: error.message }));
  process.exitCode = 1;
}
`;

// Writes `source` to `target`, prints "written" and keeps the file open until killed.
const OPEN_WRITER_SCRIPT = `
const fs = require('node:fs');
const [target, source] = process.argv.slice(1);
const fd = fs.openSync(target, 'w');
const bytes = fs.readFileSync(source);
for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
console.log('written');
setInterval(() => {}, 60_000);
`;

async function postJson(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url} failed with status ${response.status}: ${text}`);
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `probe` every 200 ms until it returns true; returns false after `timeoutMs`. */
async function pollUntil(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Returns the SHA-256 of the file, or undefined when it does not exist. */
async function sha256OrMissing(file: string): Promise<string | undefined> {
  try {
    return await sha256File(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Lists a folder, or returns [] when it does not exist. */
async function listOrEmpty(folder: string): Promise<string[]> {
  try {
    return (await readdir(folder)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function callsOf(calls: EmulatorCall[], route: string): EmulatorCall[] {
  return calls.filter((call) => call.route === route);
}

function cursorOffsetOf(call: EmulatorCall): number | undefined {
  const arg = call.arg as { cursor?: { offset?: number } } | null;
  return arg?.cursor?.offset;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe.skipIf(!fuse.ok)('write path faults and recovery', () => {
  let workDir: string;
  let data: string;
  let sources: string;
  let configFile: string;
  let emulator: EmulatorProcess;
  let defaultQuotaBytes: number;
  let mountCount = 0;
  const daemons: DaemonProcess[] = [];
  const writers: ChildProcess[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-write-faults-'));
    data = path.join(workDir, 'data');
    sources = path.join(workDir, 'sources');
    configFile = path.join(workDir, 'config.json');
    await mkdir(path.join(data, 'ro'), { recursive: true });
    await mkdir(path.join(data, 'faults'));
    await mkdir(sources);
    await writeFile(path.join(data, 'ro', 'existing.txt'), 'read-only file\n');
    await writeFile(path.join(data, 'faults', 'replaced.bin'), OLD_CONTENT);
    emulator = await spawnEmulator({
      dataDir: data,
      configFile,
      extraArgs: ['--state', path.join(workDir, 'emulator-state')],
    });
    const account = (await (await fetch(`${emulator.url}/_emulator/account`)).json()) as { quotaBytes: number };
    defaultQuotaBytes = account.quotaBytes;
  });

  afterEach(async () => {
    for (const writer of writers.splice(0)) {
      writer.kill('SIGKILL');
      await waitForExit(writer, 5_000);
    }
    // Daemons stop before the faults clear, so that no pending upload commits on the way out.
    for (const daemon of daemons.splice(0)) await daemon.stop();
    await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
    await postJson(`${emulator.url}/_emulator/account`, { quotaBytes: defaultQuotaBytes, readOnlyPaths: [] });
    await emulator.clearCalls();
  });

  afterAll(async () => {
    await emulator?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function addFault(rule: Record<string, unknown>): Promise<void> {
    await postJson(`${emulator.url}/_emulator/faults`, rule);
  }

  async function clearFaults(): Promise<void> {
    const response = await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
    expect(response.status).toBe(204);
  }

  /** Creates a new mountpoint under workDir and names a cache folder beside it. */
  async function newMount(): Promise<{ mountpoint: string; cacheDir: string }> {
    mountCount++;
    const mountpoint = path.join(workDir, `mnt${mountCount}`);
    await mkdir(mountpoint);
    return { mountpoint, cacheDir: path.join(workDir, `cache${mountCount}`) };
  }

  async function mountDaemon(mountpoint: string, cacheDir: string, extraArgs: string[] = []): Promise<DaemonProcess> {
    const daemon = await spawnDaemon({
      mountpoint,
      config: configFile,
      extraArgs: ['--cache-dir', cacheDir, '--no-poll', ...extraArgs],
    });
    daemons.push(daemon);
    return daemon;
  }

  /** Writes `size` seeded random bytes to a new source file and returns its path and hash. */
  async function makeSource(name: string, size: number, seed: number): Promise<{ file: string; sha: string }> {
    const bytes = Buffer.alloc(size);
    new SeededRandom(seed).fill(bytes);
    const file = path.join(sources, name);
    await writeFile(file, bytes);
    return { file, sha: sha256(bytes) };
  }

  async function writeThroughMount(target: string, source: string, timeoutMs = 60_000): Promise<WriteOutcome> {
    const result = await run(process.execPath, ['-e', WRITER_SCRIPT, target, source], { timeoutMs });
    expect(result.timedOut, `writer of ${target} timed out`).toBe(false);
    expect(result.stderr).toBe('');
    return JSON.parse(result.stdout) as WriteOutcome;
  }

  /** Starts a writer that copies `source` to `target` and keeps the file open; resolves once written. */
  async function startOpenWriter(target: string, source: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['-e', OPEN_WRITER_SCRIPT, target, source], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    writers.push(child);
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (output += chunk));
    const written = new Promise<boolean>((resolve) => {
      child.stdout.on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('written')) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    expect(await Promise.race([written, sleep(30_000).then(() => false)]), `open writer output: ${output}`).toBe(true);
    return child;
  }

  function spoolFolder(cacheDir: string): string {
    return path.join(cacheDir, 'spool');
  }

  /** Lists the spool's data and record files, leaving out temporary records. */
  async function spoolEntries(cacheDir: string): Promise<string[]> {
    return (await listOrEmpty(spoolFolder(cacheDir))).filter((name) => /^\d+\.(data|json)$/.test(name));
  }

  function loggedMessages(daemon: DaemonProcess): string[] {
    return daemon.logLines().map((line) => String(line.msg));
  }

  it('finish 500 is retried', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir);
    const source = await makeSource('finish-500.bin', 40 * MIB + 12_345, 1);
    await addFault({ route: 'files/upload_session/finish', fault: '500', times: 1 });

    const outcome = await writeThroughMount(path.join(daemon.mountpoint, 'faults', 'finish-500.bin'), source.file);
    expect(outcome).toEqual({ step: 'done' });

    expect(await sha256OrMissing(path.join(data, 'faults', 'finish-500.bin'))).toBe(source.sha);
    const finishes = callsOf(await emulator.calls(), 'files/upload_session/finish');
    expect(finishes.map((call) => call.fault)).toEqual(['500', undefined]);
    expect(finishes.map((call) => call.status)).toEqual([500, 200]);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
  });

  it('cut append body is retried', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir);
    const source = await makeSource('cut-append.bin', 70 * MIB, 2);
    await addFault({ route: 'files/upload_session/append_v2', fault: 'cut-request-after', bytes: 1024, times: 1 });

    const target = path.join(daemon.mountpoint, 'faults', 'cut-append.bin');
    const dd = await run('dd', [`if=${source.file}`, `of=${target}`, 'bs=1M'], { timeoutMs: 60_000, env: C_LOCALE_ENV });
    expect(dd.stderr).toContain('73400320 bytes');
    expect(dd.code).toBe(0);

    expect(await sha256OrMissing(path.join(data, 'faults', 'cut-append.bin'))).toBe(source.sha);
    const calls = await emulator.calls();
    const appends = callsOf(calls, 'files/upload_session/append_v2');
    const cutIndex = appends.findIndex((call) => call.fault === 'cut-request-after');
    expect(cutIndex).toBeGreaterThanOrEqual(0);
    const cut = appends[cutIndex] as EmulatorCall;
    const retried = appends.slice(cutIndex + 1).find((call) => cursorOffsetOf(call) === cursorOffsetOf(cut));
    expect(retried?.status).toBe(200);
    // The cut cost one append and no new session: 16 MiB in start, 16 MiB in each append
    // and the last 6 MiB in finish.
    expect(appends.filter((call) => call.status === 200)).toHaveLength(3);
    expect(callsOf(calls, 'files/upload_session/start')).toHaveLength(1);
    expect(callsOf(calls, 'files/upload_session/finish')).toHaveLength(1);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
  });

  it('write contention on upload is retried', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir);
    const source = await makeSource('contention.bin', 1 * MIB + 7, 3);
    await addFault({ route: 'files/upload', fault: 'too-many-write-operations', times: 2 });
    await addFault({
      route: 'files/upload',
      fault: '429',
      reason: 'too_many_write_operations',
      retryAfterSeconds: 1,
      times: 1,
    });

    const outcome = await writeThroughMount(path.join(daemon.mountpoint, 'faults', 'contention.bin'), source.file);
    expect(outcome).toEqual({ step: 'done' });

    expect(await sha256OrMissing(path.join(data, 'faults', 'contention.bin'))).toBe(source.sha);
    const uploads = callsOf(await emulator.calls(), 'files/upload');
    expect(uploads.map((call) => call.fault)).toEqual(['too-many-write-operations', 'too-many-write-operations', '429', undefined]);
    expect(uploads.map((call) => call.status)).toEqual([409, 409, 429, 200]);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
  });

  it('exhausted retries give EIO, then commit', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir, ['--request-timeout', '2']);
    const source = await makeSource('exhausted.bin', 100_000, 4);
    await addFault({ route: 'files/upload', fault: '503' });

    const started = Date.now();
    const outcome = await writeThroughMount(path.join(daemon.mountpoint, 'faults', 'exhausted.bin'), source.file);
    const elapsedMs = Date.now() - started;
    expect(outcome.step).toBe('close');
    expect(outcome.code).toBe('EIO');
    expect(elapsedMs).toBeLessThan(10_000);
    // One commit made the client's four attempts.
    expect(callsOf(await emulator.calls(), 'files/upload').map((call) => call.status)).toEqual([503, 503, 503, 503]);
    expect(await sha256OrMissing(path.join(data, 'faults', 'exhausted.bin'))).toBeUndefined();

    const entries = await spoolEntries(cacheDir);
    expect(entries).toHaveLength(2);
    const id = (entries[0] as string).replace(/\..*$/, '');
    expect(entries).toEqual([`${id}.data`, `${id}.json`]);
    expect(await sha256File(path.join(spoolFolder(cacheDir), `${id}.data`))).toBe(source.sha);
    const record = JSON.parse(await readFile(path.join(spoolFolder(cacheDir), `${id}.json`), 'utf8')) as Record<string, unknown>;
    expect(record.dropboxPath).toBe('/faults/exhausted.bin');
    expect(record.state).toBe('closed');
    expect(loggedMessages(daemon)).toContain('upload failed; the spool file is kept');
    const status = await run('node', [CLI_PATH, 'status', '--json', daemon.mountpoint]);
    expect(status.code, status.stderr).toBe(0);
    const pending = JSON.parse(status.stdout) as { uploadsPending: number; spool: { usedBytes: number } };
    expect(pending.uploadsPending).toBe(1);
    expect(pending.spool.usedBytes).toBe((await stat(source.file)).size);
    // Until the commit succeeds, the mount serves the bytes from the spool.
    const readBack = await run('cat', [path.join(daemon.mountpoint, 'faults', 'exhausted.bin')]);
    expect(readBack.code).toBe(0);
    expect(sha256(readBack.stdoutBytes)).toBe(source.sha);

    await clearFaults();
    const arrived = await pollUntil(async () => (await sha256OrMissing(path.join(data, 'faults', 'exhausted.bin'))) === source.sha, 15_000);
    expect(arrived).toBe(true);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
    expect(loggedMessages(daemon)).toContain('pending upload committed');
    const after = await run('node', [CLI_PATH, 'status', '--json', daemon.mountpoint]);
    const settled = JSON.parse(after.stdout) as { uploadsPending: number; spool: { usedBytes: number } };
    expect(settled.uploadsPending).toBe(0);
    expect(settled.spool.usedBytes).toBe(0);
  });

  it('full quota gives ENOSPC', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir);
    const account = (await (await fetch(`${emulator.url}/_emulator/account`)).json()) as { usedBytes: number };
    await postJson(`${emulator.url}/_emulator/account`, { quotaBytes: account.usedBytes + 1 * MIB });
    // Above 16 MiB, so the bytes go through an upload session before the rejected finish.
    const source = await makeSource('quota.bin', 20 * MIB, 5);

    const target = path.join(daemon.mountpoint, 'faults', 'quota.bin');
    const copy = await run('cp', [source.file, target], { timeoutMs: 60_000, env: C_LOCALE_ENV });
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toContain('No space left on device');
    const outcome = await writeThroughMount(target, source.file);
    expect(outcome.step).toBe('close');
    expect(outcome.code).toBe('ENOSPC');

    expect(await sha256OrMissing(path.join(data, 'faults', 'quota.bin'))).toBeUndefined();
    expect(await listOrEmpty(path.join(data, 'faults'))).not.toContain('quota.bin');
    const finishes = callsOf(await emulator.calls(), 'files/upload_session/finish');
    expect(finishes.length).toBeGreaterThanOrEqual(2);
    expect(finishes.every((call) => call.status === 409)).toBe(true);
    const entries = await spoolEntries(cacheDir);
    expect(entries.filter((name) => name.endsWith('.data'))).toHaveLength(1);
    const dataFile = entries.find((name) => name.endsWith('.data')) as string;
    expect(await sha256File(path.join(spoolFolder(cacheDir), dataFile))).toBe(source.sha);
  });

  it('read-only folder gives EACCES', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const daemon = await mountDaemon(mountpoint, cacheDir);
    await postJson(`${emulator.url}/_emulator/account`, { readOnlyPaths: ['/ro'] });
    const source = await makeSource('read-only.txt', 5_000, 6);

    // Creating the file succeeds, because a new file lives only in the spool until the commit
    // at close, and Dropbox rejects that commit.
    const target = path.join(daemon.mountpoint, 'ro', 'new.txt');
    const copy = await run('cp', [source.file, target], { env: C_LOCALE_ENV });
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toContain('Permission denied');
    const outcome = await writeThroughMount(target, source.file);
    expect(outcome.code).toBe('EACCES');
    expect(outcome.step).toBe('close');
    const overwrite = await writeThroughMount(path.join(daemon.mountpoint, 'ro', 'existing.txt'), source.file);
    expect(overwrite.code).toBe('EACCES');
    expect(overwrite.step).toBe('close');

    expect(await listOrEmpty(path.join(data, 'ro'))).toEqual(['existing.txt']);
    expect(await readFile(path.join(data, 'ro', 'existing.txt'), 'utf8')).toBe('read-only file\n');
    const uploads = callsOf(await emulator.calls(), 'files/upload');
    expect(uploads.length).toBeGreaterThanOrEqual(3);
    expect(uploads.every((call) => call.status === 409)).toBe(true);
    // The rejected bytes stay in the spool, one file for each path.
    const kept = (await spoolEntries(cacheDir)).filter((name) => name.endsWith('.data'));
    expect(kept).toHaveLength(2);
  });

  it('restart resumes closed uploads', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const first = await mountDaemon(mountpoint, cacheDir, ['--request-timeout', '2']);
    const source = await makeSource('restart.bin', 300_000, 7);
    await addFault({ route: 'files/upload', fault: '503' });

    const outcome = await writeThroughMount(path.join(first.mountpoint, 'faults', 'restart.bin'), source.file);
    expect(outcome.step).toBe('close');
    expect(outcome.code).toBe('EIO');

    // SIGTERM tries the pending upload once more, which fails while the fault is in force.
    const stopStarted = Date.now();
    const exit = await first.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopStarted).toBeLessThan(12_000);
    expect(loggedMessages(first)).toContain('uploads still pending at shutdown; the next start resumes them');
    expect(await sha256OrMissing(path.join(data, 'faults', 'restart.bin'))).toBeUndefined();
    const entries = await spoolEntries(cacheDir);
    expect(entries).toHaveLength(2);
    const dataFile = entries.find((name) => name.endsWith('.data')) as string;
    expect(await sha256File(path.join(spoolFolder(cacheDir), dataFile))).toBe(source.sha);

    await clearFaults();
    await emulator.clearCalls();
    const second = await mountDaemon(mountpoint, cacheDir);
    const arrived = await pollUntil(async () => (await sha256OrMissing(path.join(data, 'faults', 'restart.bin'))) === source.sha, 15_000);
    expect(arrived).toBe(true);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
    expect(loggedMessages(second)).toContain('resuming an upload left by an earlier run');
    expect(callsOf(await emulator.calls(), 'files/upload').map((call) => call.status)).toEqual([200]);
  });

  it('kill -9 keeps open file unfinished', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const first = await mountDaemon(mountpoint, cacheDir);
    const source = await makeSource('half-written.bin', 200_000, 8);
    const target = path.join(first.mountpoint, 'faults', 'half-written.bin');
    await startOpenWriter(target, source.file);
    // The spool record is written in the background after the first write.
    const recorded = await pollUntil(async () => (await spoolEntries(cacheDir)).some((name) => name.endsWith('.json')), 5_000);
    expect(recorded).toBe(true);

    first.process.kill('SIGKILL');
    expect(await waitForExit(first.process, 10_000)).toBe(true);
    await first.stop();
    await emulator.clearCalls();

    const second = await mountDaemon(mountpoint, cacheDir);
    expect(loggedMessages(second)).toContain(
      'a file was still being written when the daemon stopped; its bytes were not uploaded and are kept',
    );
    await sleep(3_000);
    expect(await sha256OrMissing(path.join(data, 'faults', 'half-written.bin'))).toBeUndefined();
    expect(callsOf(await emulator.calls(), 'files/upload')).toEqual([]);
    expect(await spoolEntries(cacheDir)).toEqual([]);
    const unfinished = path.join(cacheDir, 'unfinished');
    const kept = (await listOrEmpty(unfinished)).filter((name) => name.endsWith('.data'));
    expect(kept).toHaveLength(1);
    expect(await sha256File(path.join(unfinished, kept[0] as string))).toBe(source.sha);
  });

  it('kill -9 mid-upload leaves no partial file', async () => {
    const { mountpoint, cacheDir } = await newMount();
    const first = await mountDaemon(mountpoint, cacheDir);
    const size = 70 * MIB;
    const newSource = await makeSource('crash-new.bin', size, 9);
    const replacingSource = await makeSource('crash-replaced.bin', size, 10);
    await addFault({ route: 'files/upload_session/append_v2', fault: 'black-hole' });

    // Both writers reach close and wait there for their black-holed appends.
    const newTarget = path.join(first.mountpoint, 'faults', 'crash-new.bin');
    const replacedTarget = path.join(first.mountpoint, 'faults', 'replaced.bin');
    const writes = Promise.all([
      run('dd', [`if=${newSource.file}`, `of=${newTarget}`, 'bs=1M'], { timeoutMs: 60_000, env: C_LOCALE_ENV }),
      run('dd', [`if=${replacingSource.file}`, `of=${replacedTarget}`, 'bs=1M'], { timeoutMs: 60_000, env: C_LOCALE_ENV }),
    ]);
    const spooled = await pollUntil(async () => {
      const names = (await spoolEntries(cacheDir)).filter((name) => name.endsWith('.data'));
      const sizes = await Promise.all(names.map(async (name) => (await stat(path.join(spoolFolder(cacheDir), name))).size));
      return sizes.length === 2 && sizes.every((bytes) => bytes === size);
    }, 30_000);
    expect(spooled).toBe(true);
    const started = await pollUntil(
      async () => callsOf(await emulator.calls(), 'files/upload_session/start').length === 2,
      10_000,
    );
    expect(started).toBe(true);
    await sleep(500);

    first.process.kill('SIGKILL');
    expect(await waitForExit(first.process, 10_000)).toBe(true);
    const [newCopy, replacingCopy] = await writes;
    expect(newCopy.code).not.toBe(0);
    expect(replacingCopy.code).not.toBe(0);
    await first.stop();

    expect(await sha256OrMissing(path.join(data, 'faults', 'crash-new.bin'))).toBeUndefined();
    expect(await readFile(path.join(data, 'faults', 'replaced.bin'), 'utf8')).toBe(OLD_CONTENT);
    expect(callsOf(await emulator.calls(), 'files/upload_session/finish')).toEqual([]);

    // Both writers had called close, so their content counts as closed and a restart commits
    // it, whole.
    await clearFaults();
    const second = await mountDaemon(mountpoint, cacheDir);
    const arrived = await pollUntil(async () => {
      const newSha = await sha256OrMissing(path.join(data, 'faults', 'crash-new.bin'));
      const replacedSha = await sha256OrMissing(path.join(data, 'faults', 'replaced.bin'));
      return newSha === newSource.sha && replacedSha === replacingSource.sha;
    }, 30_000);
    expect(arrived, loggedMessages(second).join('\n')).toBe(true);
    expect(await pollUntil(async () => (await spoolEntries(cacheDir)).length === 0, 5_000)).toBe(true);
  });
});
