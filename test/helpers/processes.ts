// Child processes and FUSE mounts for mount tests.
//
// Every call here is asynchronous. A synchronous call (execSync, readFileSync on the mount)
// blocks the event loop, so the test process stops draining the daemon's stderr pipe. Once
// that pipe is full the daemon blocks on its next log line, stops serving the mount, and the
// synchronous call never returns.
//
// Every child and mountpoint started here goes into a registry shared by all copies of this
// module in the process. An afterAll hook and a process 'exit' handler kill what is still
// running and unmount what is still mounted, so a failing test leaves nothing behind. The
// afterAll call means this module can only be imported from vitest test files.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readFile, realpath, stat } from 'node:fs/promises';
import path, { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** CLI under test: `dist/cli/main.js`, or the file named by DROPBOX_MOUNT_CLI. */
export const CLI_PATH =
  process.env.DROPBOX_MOUNT_CLI ?? path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

const EMULATOR_START_TIMEOUT_MS = 15_000;
const DAEMON_MOUNT_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const RUN_TIMEOUT_MS = 30_000;

const EMULATOR_LISTENING_LINE = /^emulator listening on (http:\/\/127\.0\.0\.1:(\d+))\s*$/;

/** One request the emulator served, as its control endpoint returns it. */
export interface EmulatorCall {
  route: string;
  arg: unknown;
  range?: string;
  status: number;
  bytes: number;
  ms: number;
  /** Fault kind that acted on the call, such as '500' or 'cut-request-after'. */
  fault?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EmulatorProcess {
  url: string;
  port: number;
  process: ChildProcess;
  /** Path of the daemon config written by `--write-config`, when `configFile` was given. */
  configFile: string | undefined;
  calls(): Promise<EmulatorCall[]>;
  clearCalls(): Promise<void>;
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM, waits for the exit (SIGKILL after a timeout) and returns the exit status. */
  stop(): Promise<ExitStatus>;
}

export interface DaemonProcess {
  mountpoint: string;
  process: ChildProcess;
  stderr(): string;
  /** Parses the JSON log lines written so far. Lines that are not JSON are left out. */
  logLines(): Record<string, unknown>[];
  /**
   * Sends SIGTERM and waits for the exit (SIGKILL after a timeout), then runs
   * `fusermount -uz` if the mountpoint is still mounted. Returns the exit status.
   */
  stop(): Promise<ExitStatus>;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Raw stdout, for binary output such as `cat` of a random file. */
  stdoutBytes: Buffer;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Time after which the command gets SIGKILL; defaults to 30 s. */
  timeoutMs?: number;
}

export interface FuseAvailability {
  ok: boolean;
  /** Why mounting is not possible here; set when `ok` is false. */
  reason?: string;
}

// ---------------------------------------------------------------------------------------------
// Registry and cleanup

interface Registry {
  children: Set<ChildProcess>;
  mountpoints: Set<string>;
}

const REGISTRY_KEY = Symbol.for('dropbox-mount.test.processes');

function getRegistry(): Registry {
  const holder = globalThis as typeof globalThis & { [REGISTRY_KEY]?: Registry };
  let registry = holder[REGISTRY_KEY];
  if (registry === undefined) {
    registry = { children: new Set(), mountpoints: new Set() };
    holder[REGISTRY_KEY] = registry;
    process.on('exit', () => cleanupOnExit(registry as Registry));
  }
  return registry;
}

function track(child: ChildProcess): ChildProcess {
  const { children } = getRegistry();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Kills every child started by this module that is still running, then lazily unmounts every
 * mountpoint it mounted. Tests may also call it from their own hooks, because a second call
 * finds nothing left to do.
 */
export async function cleanupAll(): Promise<void> {
  const registry = getRegistry();
  await Promise.all([...registry.children].map((child) => stopChild(child)));
  for (const mountpoint of [...registry.mountpoints]) {
    await unmountIfMounted(mountpoint);
    registry.mountpoints.delete(mountpoint);
  }
}

// The 'exit' event allows only synchronous work. spawnSync is safe here, unlike in tests,
// because every daemon has had SIGKILL first and `fusermount -uz` detaches the mount without
// reading from it.
function cleanupOnExit(registry: Registry): void {
  for (const child of registry.children) {
    if (isRunning(child)) child.kill('SIGKILL');
  }
  for (const mountpoint of registry.mountpoints) {
    spawnSync(fusermountCommand(), ['-uz', mountpoint], { stdio: 'ignore', timeout: 5_000 });
  }
}

// Registered when a test file imports this module: vitest attaches a top-level hook to the
// file, so it runs after the file's last test, also when tests failed.
afterAll(cleanupAll);

// ---------------------------------------------------------------------------------------------
// Child processes

function waitForExit(child: ChildProcess): Promise<ExitStatus> {
  if (!isRunning(child)) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

function delay(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

async function stopChild(child: ChildProcess, timeoutMs = STOP_TIMEOUT_MS): Promise<ExitStatus> {
  const exited = waitForExit(child);
  if (!isRunning(child)) return exited;

  child.kill('SIGTERM');
  const result = await Promise.race([exited, delay(timeoutMs)]);
  if (result !== 'timeout') return result;

  child.kill('SIGKILL');
  return exited;
}

async function assertCliBuilt(): Promise<void> {
  try {
    await access(CLI_PATH, fsConstants.R_OK);
  } catch {
    throw new Error(`${CLI_PATH} not found: run \`npm run build\` before the mount tests`);
  }
}

function spawnCli(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child);
}

/** Collects a stream's text and calls `onLine` for each complete line. */
function collectLines(
  stream: NodeJS.ReadableStream | null,
  onLine: (line: string) => void,
): () => string {
  let text = '';
  let pending = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    text += chunk;
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  });
  return () => text;
}

/**
 * Waits until the callback passed to `register` is called. Rejects with `describe()` in the
 * message when the child exits first or `timeoutMs` passes, and stops the child on a timeout.
 */
function waitUntilReady<T>(
  child: ChildProcess,
  timeoutMs: number,
  describe: () => string,
  register: (resolve: (value: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      void stopChild(child).then(() =>
        reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`)),
      );
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`exited (code ${code}, signal ${signal}) before ready: ${describe()}`));
    };
    child.once('exit', onExit);
    child.once('error', (error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      reject(error);
    });
    register((value) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(value);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Emulator

export interface SpawnEmulatorOptions {
  dataDir: string;
  /** Port to listen on; the emulator's default is used when omitted. */
  port?: number;
  /** Adds `--write-config FILE` and waits until that file contains JSON. */
  configFile?: string;
  extraArgs?: string[];
}

/**
 * Starts `dropbox-mount emulator` on 127.0.0.1 and resolves once it prints its listening line.
 * Rejects with its stderr if it exits or does not print the line within 15 s.
 */
export async function spawnEmulator(options: SpawnEmulatorOptions): Promise<EmulatorProcess> {
  await assertCliBuilt();
  const args = ['emulator', '--data', options.dataDir, '--host', '127.0.0.1'];
  if (options.port !== undefined) args.push('--port', String(options.port));
  if (options.configFile !== undefined) args.push('--write-config', options.configFile);
  args.push(...(options.extraArgs ?? []));

  const child = spawnCli(args);
  let onListening: ((match: RegExpMatchArray) => void) | undefined;
  const stdout = collectLines(child.stdout, (line) => {
    const match = EMULATOR_LISTENING_LINE.exec(line);
    if (match !== null) onListening?.(match);
  });
  const stderr = collectLines(child.stderr, () => {});
  const describe = (): string =>
    `emulator ${args.join(' ')}\nstdout:\n${stdout()}\nstderr:\n${stderr()}`;

  const match = await waitUntilReady<RegExpMatchArray>(
    child,
    EMULATOR_START_TIMEOUT_MS,
    describe,
    (resolve) => (onListening = resolve),
  );
  const url = match[1] as string;
  const port = Number(match[2]);

  if (options.configFile !== undefined) {
    await waitForJsonFile(options.configFile, EMULATOR_START_TIMEOUT_MS, describe).catch(
      async (error: unknown) => {
        await stopChild(child);
        throw error;
      },
    );
  }

  return {
    url,
    port,
    process: child,
    configFile: options.configFile,
    calls: () => fetchCalls(url),
    clearCalls: () => clearCalls(url),
    stdout,
    stderr,
    stop: () => stopChild(child),
  };
}

async function waitForJsonFile(
  file: string,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      JSON.parse(await readFile(file, 'utf8'));
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        const message = `config file ${file} missing or invalid after ${timeoutMs} ms`;
        throw new Error(`${message}: ${describe()}`, { cause: error });
      }
    }
    await delay(50);
  }
}

async function fetchCalls(url: string): Promise<EmulatorCall[]> {
  const response = await fetch(`${url}/_emulator/calls`);
  if (!response.ok) {
    throw new Error(`GET ${url}/_emulator/calls failed with status ${response.status}`);
  }
  return (await response.json()) as EmulatorCall[];
}

async function clearCalls(url: string): Promise<void> {
  const response = await fetch(`${url}/_emulator/calls`, { method: 'DELETE' });
  if (!response.ok) {
    throw new Error(`DELETE ${url}/_emulator/calls failed with status ${response.status}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Daemon

export interface SpawnDaemonOptions {
  /** Existing empty folder to mount on. */
  mountpoint: string;
  /** Path of the daemon config file. */
  config: string;
  extraArgs?: string[];
  /** Time to wait for the `mounted` log line; defaults to 20 s. */
  timeoutMs?: number;
}

/**
 * Starts the daemon in the foreground and resolves when it logs `mounted`. Rejects with its
 * stderr if it exits first or the line does not appear in time; the daemon is then stopped and
 * the mountpoint unmounted.
 */
export async function spawnDaemon(options: SpawnDaemonOptions): Promise<DaemonProcess> {
  await assertCliBuilt();
  // /proc/self/mountinfo lists the resolved path, so resolve it once here.
  const mountpoint = await realpath(options.mountpoint);
  const extraArgs = options.extraArgs ?? [];
  // Each config gets its own write spool beside it, so a restart with the same config finds
  // the uploads it left, and nothing lands in the home folder.
  const cacheArgs = extraArgs.includes('--cache-dir') ? [] : ['--cache-dir', join(dirname(options.config), 'write-cache')];
  const args = [mountpoint, '--config', options.config, ...cacheArgs, ...extraArgs];

  const registry = getRegistry();
  registry.mountpoints.add(mountpoint);
  const child = spawnCli(args);

  const logLines: Record<string, unknown>[] = [];
  let onMounted: (() => void) | undefined;
  const stderr = collectLines(child.stderr, (line) => {
    const entry = parseLogLine(line);
    if (entry === undefined) return;
    logLines.push(entry);
    if (entry.msg === 'mounted') onMounted?.();
  });
  const stdout = collectLines(child.stdout, () => {});
  const describe = (): string =>
    `daemon ${args.join(' ')}\nstderr:\n${stderr()}\nstdout:\n${stdout()}`;

  const stop = async (): Promise<ExitStatus> => {
    const status = await stopChild(child);
    await unmountIfMounted(mountpoint);
    registry.mountpoints.delete(mountpoint);
    return status;
  };

  try {
    await waitUntilReady<void>(
      child,
      options.timeoutMs ?? DAEMON_MOUNT_TIMEOUT_MS,
      describe,
      (resolve) => (onMounted = resolve),
    );
  } catch (error) {
    await stop();
    throw error;
  }

  return { mountpoint, process: child, stderr, logLines: () => [...logLines], stop };
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // pino writes only JSON; anything else (a Node warning, say) stays in stderr() only.
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Mounts

// Decodes the octal escapes (\040 for a space) that the kernel uses in /proc mount tables.
function decodeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/** Reports whether `mountpoint` (an absolute, resolved path) is a mount point right now. */
export async function isMounted(mountpoint: string): Promise<boolean> {
  // Reading the mount table never touches the mounted filesystem, so a hung daemon cannot
  // block this call.
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => {
    const field = line.split(' ')[4];
    return field !== undefined && decodeMountPath(field) === mountpoint;
  });
}

// Set by fuseAvailable(); until then the command is looked up on PATH when it runs.
let fusermountPath: string | undefined;

function fusermountCommand(): string {
  return fusermountPath ?? 'fusermount';
}

/** Runs `fusermount -uz` on `mountpoint` if it is mounted; throws if it stays mounted. */
export async function unmountIfMounted(mountpoint: string): Promise<void> {
  if (!(await isMounted(mountpoint))) return;
  const result = await run(fusermountCommand(), ['-uz', mountpoint], { timeoutMs: 10_000 });
  if (result.code !== 0 && (await isMounted(mountpoint))) {
    throw new Error(`fusermount -uz ${mountpoint} failed (code ${result.code}): ${result.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Runs a command to completion without a shell and returns its exit status and output. The
 * command gets SIGKILL after `timeoutMs` (30 s by default) and `timedOut` is then true. Rejects
 * only when the command cannot be started, for example when it is not on PATH.
 */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(cmd, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      }),
    );
    const stdoutChunks: Buffer[] = [];
    const stderrChunks: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdoutChunks.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderrChunks.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);

    let timedOut = false;
    const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${cmd}: ${error.message}`, { cause: error }));
    });
    // 'close' rather than 'exit', so that stdout and stderr are complete.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(stdoutChunks);
      resolve({
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(stderrChunks).toString('utf8'),
        stdoutBytes,
        timedOut,
      });
    });
  });
}

/** Output of a paused Python script: all it printed, and its last line. */
export interface PausedScriptResult {
  stdout: string;
  stderr: string;
  lastLine: string;
}

/**
 * Runs a Python script that prints one line and then waits for a line on stdin, so a test can
 * change something while the script keeps files open. Calls `between` after the first line (or
 * once the script has exited early), then writes a line to the script's stdin and waits for it to
 * exit. The script gets SIGKILL after `timeoutMs`.
 */
export async function runPausedPython(
  args: string[],
  between: () => Promise<void>,
  timeoutMs = 20_000,
): Promise<PausedScriptResult> {
  const child = track(spawn('/usr/bin/python3', args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const firstLine = new Promise<void>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('\n')) resolve();
    });
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    await Promise.race([firstLine, exited]);
    await between();
    child.stdin?.write('go\n');
    await exited;
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
  return { stdout, stderr, lastLine: stdout.trim().split('\n').at(-1) ?? '' };
}

// ---------------------------------------------------------------------------------------------
// FUSE availability

const LIBFUSE2_DIRS = [
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
];

async function findOnPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not in this PATH entry.
    }
  }
  return undefined;
}

async function hasLibfuse2(): Promise<boolean> {
  for (const dir of LIBFUSE2_DIRS) {
    try {
      await access(path.join(dir, 'libfuse.so.2'), fsConstants.R_OK);
      return true;
    } catch {
      // Not in this folder.
    }
  }
  const ldconfig = (await findOnPath('ldconfig')) ?? '/sbin/ldconfig';
  try {
    const result = await run(ldconfig, ['-p'], { timeoutMs: 5_000 });
    return /\blibfuse\.so\.2\b/.test(result.stdout);
  } catch {
    return false;
  }
}

async function isInFuseGroup(): Promise<boolean> {
  try {
    const groups = await readFile('/etc/group', 'utf8');
    const line = groups.split('\n').find((entry) => entry.startsWith('fuse:'));
    const gid = Number(line?.split(':')[2]);
    return Number.isInteger(gid) && (process.getgroups?.() ?? []).includes(gid);
  } catch {
    return false;
  }
}

/**
 * Checks that this process can mount FUSE filesystems: Linux, /dev/fuse present, fusermount
 * on PATH, libfuse.so.2 installed, and the process is root, in the `fuse` group or has read
 * and write access to /dev/fuse. Mount tests use it as `describe.skipIf(!fuse.ok)`.
 */
export async function fuseAvailable(): Promise<FuseAvailability> {
  const availability = await checkFuse();
  // CI machines have FUSE, so a skip there would hide a broken set-up behind a green run.
  if (!availability.ok && process.env.CI) {
    throw new Error(`CI is set but FUSE mount tests cannot run: ${availability.reason}`);
  }
  return availability;
}

async function checkFuse(): Promise<FuseAvailability> {
  if (process.platform !== 'linux') {
    return { ok: false, reason: `FUSE mount tests run only on Linux, not ${process.platform}` };
  }
  try {
    const device = await stat('/dev/fuse');
    if (!device.isCharacterDevice()) {
      return { ok: false, reason: '/dev/fuse is not a character device' };
    }
  } catch {
    return {
      ok: false,
      reason: '/dev/fuse is missing: run modprobe fuse, or give the container --device /dev/fuse',
    };
  }

  fusermountPath = await findOnPath('fusermount');
  if (fusermountPath === undefined) {
    return { ok: false, reason: 'fusermount not found on PATH: install the Debian package fuse' };
  }
  if (!(await hasLibfuse2())) {
    return { ok: false, reason: 'libfuse.so.2 not found: install the Debian package libfuse2' };
  }

  const isRoot = process.getuid?.() === 0;
  if (!isRoot && !(await isInFuseGroup())) {
    try {
      await access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK);
    } catch {
      return {
        ok: false,
        reason: 'no access to /dev/fuse: run as root or add this user to the fuse group',
      };
    }
  }
  return { ok: true };
}
