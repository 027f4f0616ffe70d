// `dropbox-mount login` and `dropbox-mount check` run as child processes against the emulator
// on 127.0.0.1. The test plays the browser: it requests the authorize URL that login prints and
// follows the redirect to login's callback server.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, REPO_ROOT, run, spawnEmulator, type EmulatorProcess } from '../helpers/processes.js';

const LOGIN_TIMEOUT_MS = 20_000;
const AUTHORIZE_LINE = /^\s+(http:\/\/127\.0\.0\.1:\d+\/oauth2\/authorize\?\S+)$/m;

interface LoginChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the authorize URL once login has printed it. */
  authorizeUrl: Promise<string>;
  exit: Promise<number | null>;
}

const children = new Set<ChildProcess>();

function startLogin(args: string[]): LoginChild {
  const child = spawn(process.execPath, [CLI_PATH, 'login', ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const authorizeUrl = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no authorize URL printed:\n${stdout}\n${stderr}`)), LOGIN_TIMEOUT_MS);
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const match = AUTHORIZE_LINE.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`login exited before printing the authorize URL:\n${stdout}\n${stderr}`));
    });
  });
  authorizeUrl.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, authorizeUrl, exit };
}

describe('login and check against the emulator', () => {
  let workDir: string;
  let emulator: EmulatorProcess;
  let emulatorConfig: Record<string, string>;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dropbox-mount-login-'));
    const dataDir = path.join(workDir, 'data');
    await mkdir(path.join(dataDir, 'Docs'), { recursive: true });
    await writeFile(path.join(dataDir, 'Docs', 'a.txt'), 'a');
    await writeFile(path.join(dataDir, 'Docs', 'b.txt'), 'b');
    await writeFile(path.join(dataDir, 'top.txt'), 'top');
    emulator = await spawnEmulator({
      dataDir,
      configFile: path.join(workDir, 'emulator.json'),
      extraArgs: ['--app-secret', 'emulator-secret-value', '--refresh-token', 'emulator-refresh-token-value'],
    });
    emulatorConfig = JSON.parse(await readFile(path.join(workDir, 'emulator.json'), 'utf8')) as Record<string, string>;
  });

  afterEach(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  afterAll(async () => {
    await emulator?.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  function loginArgs(configFile: string, ...extra: string[]): string[] {
    return ['--app-key', emulatorConfig.appKey as string, '--api-url', emulator.url, '--config', configFile, ...extra];
  }

  it('login via the redirect writes a private config', async () => {
    const configFile = path.join(workDir, 'new-folder', 'config.json');
    const login = startLogin(loginArgs(configFile, '--root', '/Docs'));
    const authorizeUrl = await login.authorizeUrl;
    const params = new URL(authorizeUrl).searchParams;
    expect(params.get('token_access_type')).toBe('offline');
    expect(params.get('code_challenge_method')).toBe('S256');
    const redirectUri = params.get('redirect_uri') as string;
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);

    const forged = await fetch(`${redirectUri}?code=forged&state=wrong`);
    expect(forged.status).toBe(400);

    const page = await fetch(authorizeUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('received the authorization code');
    expect(await login.exit, login.stderr()).toBe(0);
    expect(login.stdout()).toContain('Logged in as Emulator User <emulator-user@example.com>');
    expect(login.stderr()).toContain('wrong state');

    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(configFile))).mode & 0o777).toBe(0o700);
    const written = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    expect(written.refreshToken).toBe('emulator-refresh-token-value');
    expect(written.root).toBe('/Docs');
    expect(written.apiUrl).toBe(emulator.url);
    expect(written.contentUrl).toBe(emulator.url);
    expect(written.notifyUrl).toBe(emulator.url);
    expect(written.appSecret).toBeUndefined();
    expect(login.stdout()).not.toContain('emulator-refresh-token-value');

    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile]);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('/Docs');
    expect(check.stdout).toContain('2 in the first page');
  });

  it('login takes a pasted code', async () => {
    const configFile = path.join(workDir, 'pasted.json');
    const login = startLogin(loginArgs(configFile, '--no-browser-callback'));
    const authorizeUrl = await login.authorizeUrl;
    expect(new URL(authorizeUrl).searchParams.get('redirect_uri')).toBeNull();
    const page = await (await fetch(authorizeUrl)).text();
    const code = /<code id="code">([^<]+)<\/code>/.exec(page)?.[1];
    expect(code).toBeDefined();
    login.child.stdin?.write(`${code}\n`);
    expect(await login.exit, login.stderr()).toBe(0);
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
  });

  it('login keeps an existing config without --force', async () => {
    const configFile = path.join(workDir, 'existing.json');
    await writeFile(configFile, '{"keep": true}\n', { mode: 0o600 });
    const rejected = await run(process.execPath, [CLI_PATH, 'login', ...loginArgs(configFile)], { input: '' });
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toContain(`config file ${configFile} already exists; pass --force`);
    expect(rejected.stdout).not.toContain('oauth2/authorize');
    expect(await readFile(configFile, 'utf8')).toBe('{"keep": true}\n');

    const login = startLogin(loginArgs(configFile, '--force'));
    await fetch(await login.authorizeUrl);
    expect(await login.exit, login.stderr()).toBe(0);
    const written = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    expect(written.refreshToken).toBe('emulator-refresh-token-value');
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
  });

  it('check prints the account, never secrets', async () => {
    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', emulator.configFile as string]);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('Emulator User <emulator-user@example.com>');
    expect(check.stdout).toContain('/ (the whole account)');
    expect(check.stdout).toContain('2 in the first page');
    expect(check.stdout).toContain('ok:');
    const output = check.stdout + check.stderr;
    expect(output).not.toContain('emulator-refresh-token-value');
    expect(output).not.toContain('emulator-secret-value');
  });

  it('check exits 2 for a missing root', async () => {
    const check = await run(process.execPath, [
      CLI_PATH, 'check', '--config', emulator.configFile as string, '--root', '/Missing',
    ]);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('root folder /Missing was not found');
  });

  it('check exits 1 for a rejected token', async () => {
    const configFile = path.join(workDir, 'wrong-token.json');
    await writeFile(configFile, JSON.stringify({ ...emulatorConfig, refreshToken: 'not-the-token' }), { mode: 0o600 });
    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('invalid_grant');
    expect(check.stderr).toContain('dropbox-mount login --app-key');
    expect(check.stdout + check.stderr).not.toContain('not-the-token');
    expect(check.stdout + check.stderr).not.toContain('emulator-secret-value');
  });

  it('check rejects a 0644 config with the fix', async () => {
    const configFile = path.join(workDir, 'open.json');
    await writeFile(configFile, JSON.stringify(emulatorConfig));
    await chmod(configFile, 0o644);
    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile]);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain(`chmod 600 ${configFile}`);
    expect(check.stdout).toBe('');
    expect(check.stderr).not.toContain('emulator-refresh-token-value');
  });

  it('check reads a systemd credential file', async () => {
    const credentials = path.join(workDir, 'credentials');
    await mkdir(credentials, { mode: 0o700 });
    await writeFile(path.join(credentials, 'refresh-token'), 'emulator-refresh-token-value\n', { mode: 0o400 });
    const configFile = path.join(workDir, 'credential.json');
    const { refreshToken: _inline, ...rest } = emulatorConfig;
    void _inline;
    const fields = { ...rest, refreshTokenFile: '${CREDENTIALS_DIRECTORY}/refresh-token' };
    await writeFile(configFile, JSON.stringify(fields), { mode: 0o600 });

    const env = { ...process.env, CREDENTIALS_DIRECTORY: credentials };
    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile], { env });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`refresh token from file ${credentials}/refresh-token`);

    const withoutVariable = { ...process.env };
    delete withoutVariable.CREDENTIALS_DIRECTORY;
    const unset = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile], { env: withoutVariable });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('LoadCredential=');
  });

  it('check reads the token from a variable', async () => {
    const configFile = path.join(workDir, 'env-token.json');
    const { refreshToken: _inline, ...rest } = emulatorConfig;
    void _inline;
    await writeFile(configFile, JSON.stringify({ ...rest, refreshTokenEnv: 'TEST_DROPBOX_TOKEN' }), { mode: 0o600 });
    const env = { ...process.env, TEST_DROPBOX_TOKEN: 'emulator-refresh-token-value' };
    const check = await run(process.execPath, [CLI_PATH, 'check', '--config', configFile], { env });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('refresh token from environment variable TEST_DROPBOX_TOKEN');
    expect(check.stdout).not.toContain('emulator-refresh-token-value');
  });
});
