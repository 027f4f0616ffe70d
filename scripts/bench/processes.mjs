// Process helpers for the benchmark: start the emulator and the daemon from dist/, run commands,
// sample a process's memory, and stop everything on exit, including after a failure.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = `${REPO_ROOT}dist/cli/main.js`;

const children = new Set();
const mountpoints = new Set();

/** Stops every child and unmounts every mountpoint this module started. */
export async function cleanup() {
  for (const child of children) child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const mountpoint of mountpoints) await run('fusermount', ['-uz', mountpoint]).catch(() => {});
  for (const child of children) child.kill('SIGKILL');
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

/** Runs a command to completion and returns its exit code and output. */
export function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function waitForLine(child, stream, pattern, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${text}`)), 30_000);
    stream.on('data', (chunk) => {
      text += chunk;
      const match = pattern.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${text}`)));
  });
}

/** Starts the emulator on 127.0.0.1 and resolves with its URL once it listens. */
export async function startEmulator(dataDir, configFile, extraArgs = []) {
  const args = [CLI, 'emulator', '--data', dataDir, '--host', '127.0.0.1', '--write-config', configFile];
  const child = spawn('node', [...args, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const match = await waitForLine(child, child.stdout, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 'emulator');
  return { child, url: match[1], stop: () => stopChild(child) };
}

/** Mounts the daemon and resolves once it logs `mounted`. */
export async function startDaemon(mountpoint, configFile, extraArgs = []) {
  const child = spawn('node', [CLI, mountpoint, '--config', configFile, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  mountpoints.add(mountpoint);
  await waitForLine(child, child.stderr, /"msg":"mounted"/, 'daemon');
  return { child, stop: () => stopChild(child) };
}

/** Starts a null filesystem (scripts/null-fs.mjs) and resolves once it is mounted. */
export async function startNullFs(mountpoint, fileBytes) {
  const child = spawn('node', [`${REPO_ROOT}scripts/null-fs.mjs`, mountpoint, String(fileBytes)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  mountpoints.add(mountpoint);
  await waitForLine(child, child.stdout, /mounted/, 'null filesystem');
  return { child, stop: () => stopChild(child) };
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) {
      children.delete(child);
      resolve();
      return;
    }
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Samples the resident set size of `pid` every 50 ms until `stop()`; returns the peak in bytes. */
export function sampleRss(pid) {
  let peak = 0;
  const timer = setInterval(async () => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kib * 1024);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Empties the page cache so each run reads through the filesystem; needs root. */
export async function dropCaches() {
  await run('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']).catch(() => {});
}

export async function emulatorCalls(url) {
  const response = await fetch(`${url}/_emulator/calls`);
  return response.json();
}

export async function clearCalls(url) {
  await fetch(`${url}/_emulator/calls`, { method: 'DELETE' });
}

export async function setShaping(url, shaping) {
  const response = await fetch(`${url}/_emulator/shaping`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(shaping),
  });
  if (!response.ok) throw new Error(`shaping rejected: ${response.status} ${await response.text()}`);
}

/** Exchanges the refresh token in the daemon config `configFile` for an access token. */
export async function accessToken(configFile) {
  const config = JSON.parse(await readFile(configFile, 'utf8'));
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: config.refreshToken,
    client_id: config.appKey,
    client_secret: config.appSecret,
  });
  const response = await fetch(`${config.apiUrl}/oauth2/token`, { method: 'POST', body: form });
  return (await response.json()).access_token;
}
