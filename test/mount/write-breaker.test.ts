// Write-path defects found by hostile testing on a real mount: mtime after a write, an unlink
// or folder rename racing a background commit, and writes after a conflict. Each test fails
// until its defect is fixed.
//
// Two of them need a commit that runs in the background while the file is closed. A full quota
// makes the close fail (ENOSPC), and the quota is then raised again. A bandwidth cap keeps the
// background retry (2 s after the last close) uploading for a few seconds, and an unlink or a
// folder rename sent meanwhile is not serialized with that commit.

import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { fuseAvailable, run } from '../helpers/processes.js';
import { startWriteMount, waitUntil, type WriteMount } from '../helpers/write-mount.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping write-breaker mount tests: ${fuse.reason}`);

// 3 MB at 500 kB/s: the background commit takes about 6 s.
const SLOW_FILE_BYTES = 3_000_000;
const SLOW_BYTES_PER_SECOND = 500_000;
// The background retry starts 2 s after the last close, so 3.5 s lands inside its upload.
const INSIDE_RETRY_MS = 3_500;

async function postJson(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, { method: 'POST', body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${url} failed: ${response.status} ${await response.text()}`);
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!fuse.ok)('write path defects on a mount', () => {
  let mount: WriteMount;
  let defaultQuotaBytes: number;
  let source: string;

  beforeAll(async () => {
    mount = await startWriteMount('dropbox-mount-write-breaker-', async (data) => {
      await writeFile(path.join(data, 'old-mtime.txt'), 'first version\n');
      await mkdir(path.join(data, 'moving'));
      await mkdir(path.join(data, 'conflict'));
      await writeFile(path.join(data, 'conflict', 'doc.txt'), 'original\n');
    });
    const account = (await (await fetch(`${mount.emulator.url}/_emulator/account`)).json()) as { quotaBytes: number };
    defaultQuotaBytes = account.quotaBytes;
    source = path.join(mount.workDir, 'slow-source.bin');
    await writeFile(source, randomBytes(SLOW_FILE_BYTES));
  });

  afterEach(async () => {
    await postJson(`${mount.emulator.url}/_emulator/shaping`, { latencyMs: 0, bandwidthBytesPerSecond: 0 });
    await postJson(`${mount.emulator.url}/_emulator/account`, { quotaBytes: defaultQuotaBytes });
  });

  afterAll(async () => {
    await mount?.close();
  });

  const inMount = (relative: string): string => path.join(mount.mountpoint, relative);
  const inData = (relative: string): string => path.join(mount.data, relative);

  // Copies `source` to `relative` with a full quota, so that the close fails and the commit is
  // left to the background retry, then slows uploads so that the retry takes a few seconds.
  async function leaveSlowBackgroundCommit(relative: string): Promise<void> {
    await postJson(`${mount.emulator.url}/_emulator/account`, { quotaBytes: 1000 });
    const copy = await run('cp', [source, inMount(relative)]);
    expect(copy.code).toBe(1);
    expect(copy.stderr).toContain('No space left on device');
    await postJson(`${mount.emulator.url}/_emulator/account`, { quotaBytes: defaultQuotaBytes });
    await postJson(`${mount.emulator.url}/_emulator/shaping`, { bandwidthBytesPerSecond: SLOW_BYTES_PER_SECOND });
    await sleep(INSIDE_RETRY_MS);
  }

  it('write updates existing file mtime', async () => {
    const before = (await stat(inMount('old-mtime.txt'))).mtimeMs;
    await sleep(2_100);
    const append = await run('sh', ['-c', `echo more >> '${inMount('old-mtime.txt')}'`]);
    expect(append.code, append.stderr).toBe(0);
    const after = (await stat(inMount('old-mtime.txt'))).mtimeMs;
    expect(after).toBeGreaterThan(before);
    // Dropbox keeps whole seconds of client_modified, and the emulator shows it as the mtime.
    const uploaded = (await stat(inData('old-mtime.txt'))).mtimeMs;
    expect(uploaded).toBeGreaterThan(before);
  });

  it('unlink during background commit', async () => {
    await leaveSlowBackgroundCommit('unlinked.bin');
    const remove = await run('rm', [inMount('unlinked.bin')]);
    expect(remove.code, remove.stderr).toBe(0);
    // The upload started by the retry ends about 6 s after it began; a correct unlink cancels it.
    await sleep(6_000);
    expect(await exists(inData('unlinked.bin'))).toBe(false);
    expect(await exists(inMount('unlinked.bin'))).toBe(false);
  });

  it('folder rename during background commit', async () => {
    await leaveSlowBackgroundCommit('moving/inside.bin');
    const move = await run('mv', [inMount('moving'), inMount('moved')]);
    expect(move.code, move.stderr).toBe(0);
    await waitUntil(
      async () => (await exists(inData('moved/inside.bin'))) || (await exists(inData('moving/inside.bin'))),
      15_000,
      'the background commit of inside.bin to end',
    );
    await sleep(500);
    expect(await exists(inData('moving'))).toBe(false);
    expect((await readdir(inData('moved'))).sort()).toEqual(['inside.bin']);
    expect((await stat(inData('moved/inside.bin'))).size).toBe(SLOW_FILE_BYTES);
  });

  it('writes after conflict reuse one copy', async () => {
    const controlUrl = `${mount.emulator.url}/_emulator/files/write`;
    // A child process opens the file, writes, lets the emulator replace it as another client
    // would, then calls fsync three times with a write between them and closes. It prints the
    // errno of each fsync and of the close, and what the mount shows at the path after each.
    const script = [
      "const fs = require('node:fs');",
      'const [file, url, remote] = process.argv.slice(1);',
      'const outcome = (call) => { try { call(); return "OK"; } catch (error) { return error.code; } };',
      '(async () => {',
      "  const fd = fs.openSync(file, 'r+');",
      "  fs.writeSync(fd, 'local 1\\n', 0);",
      "  const request = { path: '/conflict/doc.txt', content_base64: remote };",
      "  const response = await fetch(url, { method: 'POST', body: JSON.stringify(request) });",
      "  if (!response.ok) throw new Error('control write failed: ' + response.status);",
      '  const results = [];',
      '  for (let i = 2; i <= 4; i++) {',
      '    results.push(outcome(() => fs.fsyncSync(fd)));',
      "    results.push(fs.readFileSync(file, 'utf8'));",
      "    fs.writeSync(fd, `local ${i}\\n`, 0);",
      '  }',
      '  results.push(outcome(() => fs.closeSync(fd)));',
      '  console.log(JSON.stringify(results));',
      '})();',
    ].join('\n');
    const remote = Buffer.from('remote edit\n').toString('base64');
    const child = await run(process.execPath, ['-e', script, inMount('conflict/doc.txt'), controlUrl, remote]);
    expect(child.code, child.stderr).toBe(0);
    const results = JSON.parse(child.stdout) as string[];

    expect(results[0]).toBe('EEXIST');
    // After the conflict, the path shows the remote edit that Dropbox keeps there.
    expect(results[1]).toBe('remote edit\n');
    expect(results[3]).toBe('remote edit\n');
    expect(await readFile(inData('conflict/doc.txt'), 'utf8')).toBe('remote edit\n');
    const names = await readdir(inData('conflict'));
    const copies = names.filter((name) => name.includes('conflicted copy'));
    expect(copies, names.join(', ')).toHaveLength(1);
    expect(await readFile(inData(`conflict/${copies[0]}`), 'utf8')).toBe('local 4\n\n');
  });
});

