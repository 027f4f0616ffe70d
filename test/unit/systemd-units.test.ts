// `systemd-analyze verify` on the unit files in systemd/. The ExecStart binary is replaced by
// a stub script, because verify rejects a command that does not exist and dropbox-mount is
// not installed in /usr/local/bin on test machines. verify exits 0 on warnings such as an
// unknown key, so the tests also require empty output.

import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, run } from '../helpers/processes.js';

const INSTALLED_BINARY = '/usr/local/bin/dropbox-mount';
const UNITS = ['dropbox-mount@.service', 'dropbox-mount-user@.service'];

async function findSystemdAnalyze(): Promise<boolean> {
  try {
    const result = await run('systemd-analyze', ['--version']);
    return result.code === 0;
  } catch {
    return false;
  }
}

const available = await findSystemdAnalyze();
if (!available && process.env.CI) {
  throw new Error('CI is set but systemd-analyze is missing: install the Debian package systemd');
}

describe.skipIf(!available)('systemd unit files', () => {
  let workDir: string;
  let runtimeDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-units-'));
    runtimeDir = path.join(workDir, 'runtime');
    await mkdir(runtimeDir, { mode: 0o700 });
    const stub = path.join(workDir, 'dropbox-mount-stub');
    await writeFile(stub, '#!/bin/sh\nexit 0\n');
    await chmod(stub, 0o755);
    for (const unit of UNITS) {
      const text = await readFile(path.join(REPO_ROOT, 'systemd', unit), 'utf8');
      expect(text).toContain(`ExecStart=${INSTALLED_BINARY} `);
      await writeFile(path.join(workDir, unit), text.replaceAll(INSTALLED_BINARY, stub));
    }
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  async function verify(unitPath: string, user: boolean) {
    const args = [...(user ? ['--user'] : []), 'verify', '--man=no', unitPath];
    // A user manager needs XDG_RUNTIME_DIR, which containers and CI often do not set.
    const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
    return run('systemd-analyze', args, { env });
  }

  it('system unit passes verify', async () => {
    const result = await verify(path.join(workDir, 'dropbox-mount@demo.service'), false);
    expect(result.stderr + result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  it('user unit passes verify', async () => {
    const result = await verify(path.join(workDir, 'dropbox-mount-user@demo.service'), true);
    expect(result.stderr + result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  it('verify reports a broken copy', async () => {
    const text = await readFile(path.join(workDir, 'dropbox-mount@.service'), 'utf8');
    await writeFile(path.join(workDir, 'broken@.service'), text.replace(/^Type=notify$/m, 'Type=bogus'));
    const result = await verify(path.join(workDir, 'broken@demo.service'), false);
    expect(result.stderr).toContain('Failed to parse service type');
  });

  it.each(UNITS)('%s restarts and unmounts', async (unit) => {
    const text = await readFile(path.join(REPO_ROOT, 'systemd', unit), 'utf8');
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^NotifyAccess=all$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    expect(text).toMatch(/^RestartPreventExitStatus=2$/m);
    expect(text).toMatch(/^KillSignal=SIGTERM$/m);
    expect(text).toMatch(/^ExecStopPost=-\/bin\/fusermount -uz \$\{MOUNTPOINT\}$/m);
    expect(text).not.toMatch(/^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts)=/m);
  });
});
