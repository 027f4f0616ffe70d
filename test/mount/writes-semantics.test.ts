// Write-path rules on a real mount: folder operations and their errno, unchanged files that
// cost no upload, the conflicted copy after a remote edit, names Dropbox rejects, operations
// Dropbox has no counterpart for, and read-only mounts. Bytes are checked in the emulator's
// data folder, and upload counts in its call log.

import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { fuseAvailable, run, spawnDaemon, type DaemonProcess } from '../helpers/processes.js';
import { countRoute, errnoOf, startWriteMount, waitUntil, writeCalls, type WriteMount } from '../helpers/write-mount.js';

const fuse = await fuseAvailable();
if (!fuse.ok) console.warn(`skipping write-semantics mount tests: ${fuse.reason}`);

const UPLOAD_ROUTES = ['files/upload', 'files/upload_session/start', 'files/upload_session/finish'];

function uploadCount(calls: Awaited<ReturnType<WriteMount['emulator']['calls']>>): number {
  return UPLOAD_ROUTES.reduce((sum, route) => sum + countRoute(calls, route), 0);
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!fuse.ok)('write path rules on a mount', () => {
  let mount: WriteMount;
  const extraDaemons: DaemonProcess[] = [];

  beforeAll(async () => {
    mount = await startWriteMount('dropbox-mount-write-rules-', async (data) => {
      await mkdir(path.join(data, 'ns', 'full'), { recursive: true });
      await writeFile(path.join(data, 'ns', 'full', 'inside.txt'), 'inside\n');
      await writeFile(path.join(data, 'ns', 'plain.txt'), 'plain\n');
      await mkdir(path.join(data, 'unchanged'));
      await writeFile(path.join(data, 'unchanged', 'a.txt'), 'keep me\n');
      await writeFile(path.join(data, 'unchanged', 'b.txt'), 'keep me too\n');
      await writeFile(path.join(data, 'unchanged', 'shell.txt'), 'a longer first version\n');
      await mkdir(path.join(data, 'conflict'));
      await writeFile(path.join(data, 'conflict', 'doc.txt'), 'original\n');
      await mkdir(path.join(data, 'ro'));
      await writeFile(path.join(data, 'ro', 'existing.txt'), 'read only\n');
    });
  });

  afterEach(async () => {
    for (const daemon of extraDaemons.splice(0)) await daemon.stop();
  });

  afterAll(async () => {
    await mount?.close();
  });

  const inMount = (relative: string): string => path.join(mount.mountpoint, relative);
  const inData = (relative: string): string => path.join(mount.data, relative);

  it('mkdir -p, mv and rm -r of folders', async () => {
    const mkdirP = await run('mkdir', ['-p', inMount('ns/a/b/c')]);
    expect(mkdirP.code, mkdirP.stderr).toBe(0);
    expect((await stat(inData('ns/a/b/c'))).isDirectory()).toBe(true);

    await mkdir(inMount('ns/move-src'));
    await writeFile(inMount('ns/move-src/one.txt'), 'one\n');
    await writeFile(inMount('ns/move-src/two.txt'), 'two\n');
    const mv = await run('mv', [inMount('ns/move-src'), inMount('ns/move-dst')]);
    expect(mv.code, mv.stderr).toBe(0);
    expect(await exists(inData('ns/move-src'))).toBe(false);
    expect(await readFile(inData('ns/move-dst/one.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(inData('ns/move-dst/two.txt'), 'utf8')).toBe('two\n');
    const listing = await run('ls', [inMount('ns/move-dst')]);
    expect(listing.stdout).toBe('one.txt\ntwo.txt\n');

    const rmR = await run('rm', ['-r', inMount('ns/a'), inMount('ns/move-dst')]);
    expect(rmR.code, rmR.stderr).toBe(0);
    expect(await exists(inData('ns/a'))).toBe(false);
    expect(await exists(inData('ns/move-dst'))).toBe(false);
    expect(await exists(inMount('ns/a'))).toBe(false);
  });

  it('rmdir of non-empty folder is ENOTEMPTY', async () => {
    expect(await errnoOf('fs.rmdirSync(args[0])', inMount('ns/full'))).toBe('ENOTEMPTY');
    const rmdir = await run('rmdir', [inMount('ns/full')]);
    expect(rmdir.code).not.toBe(0);
    expect(rmdir.stderr).toContain('Directory not empty');
    expect(await readFile(inData('ns/full/inside.txt'), 'utf8')).toBe('inside\n');
  });

  it('unlink of a folder is EISDIR', async () => {
    expect(await errnoOf('fs.unlinkSync(args[0])', inMount('ns/full'))).toBe('EISDIR');
    expect((await stat(inData('ns/full'))).isDirectory()).toBe(true);
  });

  it('rename of folder over file is ENOTDIR', async () => {
    expect(await errnoOf('fs.renameSync(args[0], args[1])', inMount('ns/full'), inMount('ns/plain.txt'))).toBe('ENOTDIR');
    expect(await readFile(inData('ns/plain.txt'), 'utf8')).toBe('plain\n');
    expect(await readFile(inData('ns/full/inside.txt'), 'utf8')).toBe('inside\n');
  });

  it('link, symlink and mknod are EPERM', async () => {
    expect(await errnoOf('fs.linkSync(args[0], args[1])', inMount('ns/plain.txt'), inMount('ns/hard'))).toBe('EPERM');
    expect(await errnoOf('fs.symlinkSync(args[0], args[1])', 'plain.txt', inMount('ns/soft'))).toBe('EPERM');
    const fifo = await run('mkfifo', [inMount('ns/fifo')]);
    expect(fifo.code).not.toBe(0);
    expect(fifo.stderr).toContain('Operation not permitted');
    expect((await readdir(inData('ns'))).sort()).toEqual(['full', 'plain.txt']);
  });

  it('chmod and chown change nothing', async () => {
    await mount.emulator.clearCalls();
    expect(await errnoOf('fs.chmodSync(args[0], 0o600)', inMount('ns/plain.txt'))).toBe('OK');
    expect(await errnoOf('fs.chownSync(args[0], process.getuid(), process.getgid())', inMount('ns/plain.txt'))).toBe('OK');
    expect(writeCalls(await mount.emulator.calls())).toEqual([]);
    expect((await stat(inMount('ns/plain.txt'))).mode & 0o777).toBe(0o644);
  });

  it('open for writing without writes uploads nothing', async () => {
    await mount.emulator.clearCalls();
    const file = inMount('unchanged/a.txt');
    expect(await errnoOf("fs.closeSync(fs.openSync(args[0], 'r+'))", file)).toBe('OK');
    expect(await errnoOf("fs.closeSync(fs.openSync(args[0], 'a'))", file)).toBe('OK');
    expect(await errnoOf('fs.fsyncSync(fs.openSync(args[0], "r+"))', file)).toBe('OK');
    expect(uploadCount(await mount.emulator.calls())).toBe(0);
    expect(await readFile(inData('unchanged/a.txt'), 'utf8')).toBe('keep me\n');
  });

  it('touch of existing file changes only mtime', async () => {
    const file = inMount('unchanged/b.txt');
    const before = await run('stat', ['-c', '%Y', file]);
    await mount.emulator.clearCalls();

    const touchAt = await run('touch', ['-d', '@1500000000', file]);
    expect(touchAt.code, touchAt.stderr).toBe(0);
    const shownAt = await run('stat', ['-c', '%Y', file]);
    expect(shownAt.stdout.trim()).toBe('1500000000');

    const started = Math.floor(Date.now() / 1000);
    const touchNow = await run('touch', [file]);
    expect(touchNow.code, touchNow.stderr).toBe(0);
    const shownNow = Number((await run('stat', ['-c', '%Y', file])).stdout.trim());
    expect(shownNow).toBeGreaterThanOrEqual(started);
    expect(shownNow).not.toBe(Number(before.stdout.trim()));

    expect(uploadCount(await mount.emulator.calls())).toBe(0);
    expect(await readFile(inData('unchanged/b.txt'), 'utf8')).toBe('keep me too\n');
  });

  it('remote edit before close gives conflicted copy', async () => {
    const controlUrl = `${mount.emulator.url}/_emulator/files/write`;
    const remote = Buffer.from('remote edit\n');
    // Opens, writes, lets the emulator replace the file as another client would, then closes.
    const body = [
      "const fd = fs.openSync(args[0], 'w');",
      "fs.writeSync(fd, 'local edit\\n');",
      'const request = { path: "/conflict/doc.txt", content_base64: args[2] };',
      "const response = await fetch(args[1], { method: 'POST', body: JSON.stringify(request) });",
      "if (!response.ok) throw new Error('control write failed: ' + response.status);",
      'fs.closeSync(fd)',
    ].join('\n');
    expect(await errnoOf(body, inMount('conflict/doc.txt'), controlUrl, remote.toString('base64'))).toBe('EEXIST');

    expect(await readFile(inData('conflict/doc.txt'), 'utf8')).toBe('remote edit\n');
    const names = await readdir(inData('conflict'));
    const copies = names.filter((name) => /^doc \(conflicted copy \d{4}-\d{2}-\d{2} \d{6}\)\.txt$/.test(name));
    expect(copies, names.join(', ')).toHaveLength(1);
    expect(await readFile(inData(`conflict/${copies[0]}`), 'utf8')).toBe('local edit\n');

    const warnings = mount.daemon.logLines().filter((line) => String(line.msg).includes('conflicted copy'));
    expect(warnings).toHaveLength(1);
    const cat = await run('cat', [inMount(`conflict/${copies[0]}`)]);
    expect(cat.stdout).toBe('local edit\n');
  });

  it('shell > and >> on existing file', async () => {
    await mount.emulator.clearCalls();

    const overwrite = await run('sh', ['-c', 'echo short > shell.txt'], { cwd: inMount('unchanged') });
    expect(overwrite.code, overwrite.stderr).toBe(0);
    expect(await readFile(inData('unchanged/shell.txt'), 'utf8')).toBe('short\n');
    // O_TRUNC needs none of the old bytes, so nothing is downloaded.
    const afterOverwrite = await mount.emulator.calls();
    expect(countRoute(afterOverwrite, 'files/download')).toBe(0);
    expect(countRoute(afterOverwrite, 'files/upload')).toBe(1);

    await mount.emulator.clearCalls();
    const append = await run('sh', ['-c', 'echo appended >> shell.txt'], { cwd: inMount('unchanged') });
    expect(append.code, append.stderr).toBe(0);
    expect(await readFile(inData('unchanged/shell.txt'), 'utf8')).toBe('short\nappended\n');
    // The append needs the old bytes in the spool, so it downloads them once.
    const afterAppend = await mount.emulator.calls();
    expect(countRoute(afterAppend, 'files/download')).toBe(1);
    expect(countRoute(afterAppend, 'files/upload')).toBe(1);
    const cat = await run('cat', [inMount('unchanged/shell.txt')]);
    expect(cat.stdout).toBe('short\nappended\n');
  });

  it('shell > creates a new file', async () => {
    await mount.emulator.clearCalls();
    const create = await run('sh', ['-c', 'echo fresh > fresh.txt'], { cwd: inMount('unchanged') });
    expect(create.code, create.stderr).toBe(0);
    // The shell closes a duplicate of the new descriptor before it writes. That close must not
    // commit the empty file: the content is uploaded once, by the last close.
    const uploaded = async () => (await readFile(inData('unchanged/fresh.txt'), 'utf8').catch(() => '')) === 'fresh\n';
    await waitUntil(uploaded, 5_000, 'fresh.txt to be uploaded');
    expect(countRoute(await mount.emulator.calls(), 'files/upload')).toBe(1);
    const cat = await run('cat', [inMount('unchanged/fresh.txt')]);
    expect(cat.stdout).toBe('fresh\n');
  });

  it('futimes before close sets client_modified', async () => {
    const seconds = 1_400_000_000;
    const body = [
      "const fd = fs.openSync(args[0], 'w');",
      "fs.writeSync(fd, 'dated\\n');",
      `fs.futimesSync(fd, ${seconds}, ${seconds});`,
      'fs.closeSync(fd)',
    ].join('\n');
    expect(await errnoOf(body, inMount('unchanged/dated.txt'))).toBe('OK');
    expect(await readFile(inData('unchanged/dated.txt'), 'utf8')).toBe('dated\n');
    // The emulator stores client_modified as the mtime of the file in its data folder.
    expect(Math.floor((await stat(inData('unchanged/dated.txt'))).mtimeMs / 1000)).toBe(seconds);
    const statMtime = await run('stat', ['-c', '%Y', inMount('unchanged/dated.txt')]);
    expect(statMtime.stdout.trim()).toBe(String(seconds));
  });

  it('file unlinked before close leaves nothing', async () => {
    await mount.emulator.clearCalls();
    const body = [
      "const fd = fs.openSync(args[0], 'w');",
      "fs.writeSync(fd, 'short-lived\\n');",
      'fs.unlinkSync(args[0]);',
      'fs.closeSync(fd)',
    ].join('\n');
    expect(await errnoOf(body, inMount('unchanged/gone.txt'))).toBe('OK');
    expect(await exists(inData('unchanged/gone.txt'))).toBe(false);
    expect(await exists(inMount('unchanged/gone.txt'))).toBe(false);
    // libfuse renames a file unlinked while open to .fuse_hidden* and unlinks that name at
    // release. The mount treats the rename as the unlink, so nothing is uploaded.
    const hidden = (await readdir(inData('unchanged'))).filter((name) => name.startsWith('.fuse_hidden'));
    expect(hidden).toEqual([]);
    expect(writeCalls(await mount.emulator.calls()).map((call) => call.route)).toEqual([]);
  });

  it('desktop.ini is EINVAL at create', async () => {
    await mount.emulator.clearCalls();
    expect(await errnoOf("fs.closeSync(fs.openSync(args[0], 'w'))", inMount('ns/desktop.ini'))).toBe('EINVAL');
    const touch = await run('touch', [inMount('ns/Thumbs.db')]);
    expect(touch.code).not.toBe(0);
    expect(touch.stderr).toContain('Invalid argument');
    expect(uploadCount(await mount.emulator.calls())).toBe(0);
    expect(await exists(inData('ns/desktop.ini'))).toBe(false);
  });

  it.each([
    ['--read-only', ['--read-only']],
    ['-o ro', ['-o', 'ro']],
  ])('%s makes every change EROFS', async (_label, args) => {
    const mountpoint = path.join(mount.workDir, `ro-mnt-${args.length}`);
    await mkdir(mountpoint);
    const cacheDir = path.join(mount.workDir, `ro-cache-${args.length}`);
    const daemon = await spawnDaemon({ mountpoint, config: mount.configFile, extraArgs: [...args, '--cache-dir', cacheDir] });
    extraDaemons.push(daemon);
    const folder = path.join(daemon.mountpoint, 'ro');
    await mount.emulator.clearCalls();

    const attempts = [
      ['sh', '-c', 'echo new > new.txt'],
      ['sh', '-c', 'echo more >> existing.txt'],
      ['mkdir', 'sub'],
      ['rm', '-f', 'existing.txt'],
      ['touch', 'existing.txt'],
      ['touch', 'other.txt'],
      ['mv', 'existing.txt', 'moved.txt'],
    ];
    for (const [command, ...commandArgs] of attempts) {
      const result = await run(command as string, commandArgs, { cwd: folder });
      const label = [command, ...commandArgs].join(' ');
      expect(result.code, label).not.toBe(0);
      expect(result.stderr, label).toContain('Read-only file system');
    }
    expect(await errnoOf("fs.openSync(args[0], 'r+')", path.join(folder, 'existing.txt'))).toBe('EROFS');

    expect(writeCalls(await mount.emulator.calls())).toEqual([]);
    expect((await readdir(inData('ro'))).sort()).toEqual(['existing.txt']);
    expect(await readFile(inData('ro/existing.txt'), 'utf8')).toBe('read only\n');
  });
});
