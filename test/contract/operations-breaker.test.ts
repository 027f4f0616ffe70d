// Attacks on the operations side (CLI input, token refresh, status figures, secrets in output),
// run against the emulator on 127.0.0.1. The first block contains one test per defect, each
// of which failed before its fix. The second contains attacks that found nothing, kept as guards.

import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { CLI_PATH, cleanupAll, run, spawnEmulator, type EmulatorProcess } from '../helpers/processes.js';

interface EmulatorConfig {
  appKey: string;
  appSecret: string;
  refreshToken: string;
  apiUrl: string;
}

let workDir: string;
let emulator: EmulatorProcess;
let configFile: string;
let config: EmulatorConfig;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'operations-breaker-'));
  const dataDir = path.join(workDir, 'data');
  await mkdir(dataDir);
  await writeFile(path.join(dataDir, 'a.txt'), 'hello\n');
  await mkdir(path.join(workDir, 'mnt'));
  configFile = path.join(workDir, 'emulator.json');
  emulator = await spawnEmulator({ dataDir, configFile });
  config = JSON.parse(await readFile(configFile, 'utf8')) as EmulatorConfig;
});

afterAll(async () => {
  await cleanupAll();
  await rm(workDir, { recursive: true, force: true });
});

async function setFault(rule: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${emulator.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify(rule) });
  expect(response.ok).toBe(true);
}

async function clearFaults(): Promise<void> {
  await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
}

function cli(args: string[]) {
  return run(process.execPath, [CLI_PATH, ...args], { timeoutMs: 20_000 });
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain(config.appSecret);
  expect(text).not.toContain(config.refreshToken);
  // The emulator's access tokens have the form sl.PAYLOAD.MAC.
  expect(text).not.toMatch(/sl\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/);
}

describe('defects', () => {
  // Defect: a non-numeric --request-timeout is reported as "NaN", not as the value typed.
  it('mount names a non-numeric timeout', async () => {
    const result = await cli([path.join(workDir, 'mnt'), '--config', configFile, '--request-timeout', 'abc']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--request-timeout');
    expect(result.stderr).toContain('"abc"');
  });

  // Defect: check reports a non-numeric --request-timeout as "NaN", not as the value typed.
  it('check names a non-numeric timeout', async () => {
    const result = await cli(['check', '--config', configFile, '--request-timeout', 'abc']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"abc"');
  });

  // Defect: status "api calls" never counts oauth2/token requests, so a token outage is invisible.
  it('request counts include token refreshes', async () => {
    const loaded = await loadConfig(configFile);
    const client = new DropboxClient({ config: loaded, timeoutMs: 5_000, log: silentLogger() });
    try {
      await client.tokens.accessToken();
      await client.rpc('users/get_current_account');

      expect(client.requestCounts.get('users/get_current_account')).toBe(1);
      expect(client.requestCounts.get('oauth2/token')).toBe(1);
    } finally {
      await client.close();
    }
  });
});

describe('attacks that found nothing', () => {
  it('check with a revoked refresh token', async () => {
    const revoked = path.join(workDir, 'revoked.json');
    const fields = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    await writeFile(revoked, JSON.stringify({ ...fields, refreshToken: 'revoked-token-value-0123456789' }));
    await chmod(revoked, 0o600);

    const result = await cli(['check', '--config', revoked, '--log-level', 'debug']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid_grant');
    expect(result.stderr).toContain('dropbox-mount login');
    expect(result.stderr).not.toContain('revoked-token-value-0123456789');
    expectNoSecret(result.stdout + result.stderr);
  });

  it('check while the token endpoint fails', async () => {
    await setFault({ route: 'oauth2/token', fault: '500' });
    try {
      const result = await cli(['check', '--config', configFile, '--log-level', 'debug']);

      expect(result.code).toBe(1);
      expect(result.stderr).toContain('oauth2/token failed after 4 attempts');
      expectNoSecret(result.stdout + result.stderr);
    } finally {
      await clearFaults();
    }
  });

  it('check with expired access tokens at debug level', async () => {
    await setFault({ route: '*', fault: 'expired-token', times: 1 });
    try {
      const result = await cli(['check', '--config', configFile, '--log-level', 'debug']);

      expect(result.code).toBe(0);
      expect(result.stdout).toContain('ok: dropbox-mount can mount this folder');
      expectNoSecret(result.stdout + result.stderr);
    } finally {
      await clearFaults();
    }
  });

  it('status names a mountpoint with no daemon', async () => {
    const mountpoint = path.join(workDir, 'mnt');

    const result = await cli(['status', mountpoint]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no dropbox-mount daemon serves ${mountpoint}`);
  });

  it('mount rejects a world-readable config', async () => {
    const open = path.join(workDir, 'open.json');
    await writeFile(open, await readFile(configFile, 'utf8'));
    await chmod(open, 0o644);

    const result = await cli([path.join(workDir, 'mnt'), '--config', open]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${open}`);
    expectNoSecret(result.stdout + result.stderr);
  });
});
