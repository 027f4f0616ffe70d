// Shared set-up for the write-path mount tests: one emulator serving a data folder and one
// writable daemon on it, plus helpers to count write routes and to read an errno.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { run, spawnDaemon, spawnEmulator, type DaemonProcess, type EmulatorCall, type EmulatorProcess } from './processes.js';

/** Routes that change the account. A read-only mount must send none of them. */
export const WRITE_ROUTES = [
  'files/upload',
  'files/upload_session/start',
  'files/upload_session/append_v2',
  'files/upload_session/finish',
  'files/create_folder_v2',
  'files/delete_v2',
  'files/move_v2',
  'files/copy_v2',
] as const;

export interface WriteMount {
  workDir: string;
  /** The emulator's data folder, which contains what Dropbox stores. */
  data: string;
  mountpoint: string;
  configFile: string;
  emulator: EmulatorProcess;
  daemon: DaemonProcess;
  /** Stops the daemon and the emulator and deletes `workDir`. */
  close(): Promise<void>;
}

/**
 * Creates a temporary folder under os.tmpdir() with `data/` (filled by `seed`) and `mnt/`,
 * starts the emulator on `data/` and mounts it writable on `mnt/`.
 */
export async function startWriteMount(
  prefix: string,
  seed: (data: string) => Promise<void>,
  daemonArgs: string[] = [],
): Promise<WriteMount> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const data = path.join(workDir, 'data');
  const mountpoint = path.join(workDir, 'mnt');
  const configFile = path.join(workDir, 'config.json');
  await mkdir(data);
  await mkdir(mountpoint);
  await seed(data);
  const emulator = await spawnEmulator({ dataDir: data, configFile });
  const daemon = await spawnDaemon({ mountpoint, config: configFile, extraArgs: daemonArgs });
  return {
    workDir,
    data,
    mountpoint: daemon.mountpoint,
    configFile,
    emulator,
    daemon,
    close: async () => {
      await daemon.stop();
      await emulator.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** Counts the calls of one route. */
export function countRoute(calls: EmulatorCall[], route: string): number {
  return calls.filter((call) => call.route === route).length;
}

/** Returns the calls of the routes in WRITE_ROUTES. */
export function writeCalls(calls: EmulatorCall[]): EmulatorCall[] {
  return calls.filter((call) => (WRITE_ROUTES as readonly string[]).includes(call.route));
}

/**
 * Runs `body` in a child Node process, inside an async function where `fs` is node:fs and
 * `args` contains `args`, and returns the error code it throws ("ENOTEMPTY") or "OK". The
 * calls run in a child, because a synchronous call on the mount from the test process would
 * block the event loop that drains the daemon's log pipe.
 */
export async function errnoOf(body: string, ...args: string[]): Promise<string> {
  const script = [
    "const fs = require('node:fs');",
    'const args = process.argv.slice(1);',
    '(async () => {',
    `  try { ${body}; console.log('OK'); } catch (error) { console.log(error.code ?? String(error)); }`,
    '})();',
  ].join('\n');
  const result = await run(process.execPath, ['-e', script, ...args]);
  if (result.code !== 0) throw new Error(`node -e failed (code ${result.code}): ${result.stderr}`);
  return result.stdout.trim();
}

/** Calls `check` every 50 ms until it returns true; throws after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
