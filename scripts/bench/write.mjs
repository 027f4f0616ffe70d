// The write benchmark: a 1 GiB file written through the mount with dd, against a plain upload of
// the same bytes to the same emulator by upload session. The dd time includes the commit that
// close waits for, and the plain upload sends 16 MiB chunks, as the daemon does. Rounds
// alternate between the two so that both see the same machine state. The table gives medians
// and their ratio.
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { markdownTable, machineSummary, writeSection } from './report.mjs';
import { accessToken, cleanup, clearCalls, emulatorCalls, run, startDaemon, startEmulator } from './processes.mjs';

const MIB = 1024 * 1024;
const FILE_BYTES = 1024 * MIB;
const CHUNK_BYTES = 16 * MIB;
const ROUNDS = 3;

async function uploadCall(url, token, route, arg, body) {
  const response = await fetch(`${url}/2/${route}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'dropbox-api-arg': JSON.stringify(arg),
    },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${route}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Uploads `source` by session, reading it in chunks as the daemon does; returns seconds. */
async function plainUpload(url, token, source, path) {
  const started = performance.now();
  const handle = await open(source, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let offset = 0;
    let sessionId;
    while (FILE_BYTES - offset > CHUNK_BYTES) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, offset);
      const body = buffer.subarray(0, bytesRead);
      if (sessionId === undefined) {
        sessionId = (await uploadCall(url, token, 'files/upload_session/start', { close: false }, body)).session_id;
      } else {
        await uploadCall(url, token, 'files/upload_session/append_v2', { cursor: { session_id: sessionId, offset } }, body);
      }
      offset += bytesRead;
    }
    const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, offset);
    const commit = { path, mode: 'overwrite' };
    await uploadCall(url, token, 'files/upload_session/finish', { cursor: { session_id: sessionId, offset }, commit }, buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
  return (performance.now() - started) / 1000;
}

/** Copies `source` into the mount with dd; close waits for the commit. Returns seconds. */
async function mountWrite(source, target) {
  const started = performance.now();
  const result = await run('dd', [`if=${source}`, `of=${target}`, 'bs=1M']);
  if (result.code !== 0) throw new Error(`dd failed: ${result.stderr}`);
  return (performance.now() - started) / 1000;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function runWriteBenchmark() {
  const workDir = await mkdtemp(join(tmpdir(), 'dropbox-mount-bench-write-'));
  const dataDir = join(workDir, 'data');
  const mountpoint = join(workDir, 'mnt');
  const source = join(workDir, 'source.bin');
  const configFile = join(workDir, 'config.json');
  try {
    await mkdir(dataDir);
    await mkdir(mountpoint);
    await run('sh', ['-c', `head -c ${FILE_BYTES} /dev/urandom > "${source}"`]);
    const emulator = await startEmulator(dataDir, configFile);
    await startDaemon(mountpoint, configFile, ['--cache-dir', join(workDir, 'cache')]);
    const token = await accessToken(configFile);
    const plain = [];
    const mounted = [];
    let calls = [];
    for (let round = 0; round < ROUNDS; round++) {
      plain.push(await plainUpload(emulator.url, token, source, `/plain-${round}.bin`));
      await clearCalls(emulator.url);
      mounted.push(await mountWrite(source, join(mountpoint, `mounted-${round}.bin`)));
      calls = await emulatorCalls(emulator.url);
      const check = await run('cmp', [source, join(dataDir, `mounted-${round}.bin`)]);
      if (check.code !== 0) throw new Error(`round ${round}: the uploaded file differs from the source`);
      await rm(join(dataDir, `plain-${round}.bin`), { force: true });
      await rm(join(dataDir, `mounted-${round}.bin`), { force: true });
    }
    const plainRate = FILE_BYTES / MIB / median(plain);
    const mountRate = FILE_BYTES / MIB / median(mounted);
    const routes = new Map();
    for (const call of calls.calls ?? calls) routes.set(call.route, (routes.get(call.route) ?? 0) + 1);
    const table = markdownTable(
      ['measure', 'result'],
      [
        ['plain session upload, 1 GiB (median MiB/s)', plainRate.toFixed(0)],
        ['dd through the mount, 1 GiB, close included (median MiB/s)', mountRate.toFixed(0)],
        ['ratio mount / plain', (mountRate / plainRate).toFixed(2)],
        ['upload calls of the last mount write', [...routes].filter(([route]) => route.includes('upload')).map(([r, n]) => `${r} ${n}`).join(', ')],
        ['rounds (seconds, plain / mount)', plain.map((p, i) => `${p.toFixed(1)} / ${mounted[i].toFixed(1)}`).join('; ')],
      ],
    );
    console.log(table);
    await writeSection('write', [
      '## Sequential write',
      '',
      `Command: \`npm run bench -- --only write\`. Machine: ${machineSummary()}. Emulator unshaped, on 127.0.0.1.`,
      '',
      table,
    ]);
  } finally {
    await cleanup();
    await rm(workDir, { recursive: true, force: true });
  }
}
