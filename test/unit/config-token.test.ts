import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPrivateMode, loadConfig, parseConfig, shellQuote } from '../../src/config/config.js';
import { buildAuthorizeUrl, createPkceSession, parsePastedCode } from '../../src/auth/login.js';
import { s256Challenge } from '../../src/emulator/oauth-codes.js';

describe('refresh token sources', () => {
  it('reads refreshTokenEnv', () => {
    const config = parseConfig({ appKey: 'k', refreshTokenEnv: 'TOKEN' }, 'c.json', { TOKEN: ' t-env\n' });
    expect(config.refreshToken.reveal()).toBe('t-env');
    expect(config.refreshTokenSource).toBe('environment variable TOKEN');
  });

  it('rejects an unset refreshTokenEnv', () => {
    expect(() => parseConfig({ appKey: 'k', refreshTokenEnv: 'TOKEN' }, 'c.json', {})).toThrow(
      /names the environment variable TOKEN, which is not set/,
    );
  });

  it('rejects two token fields', () => {
    expect(() => parseConfig({ appKey: 'k', refreshToken: 't', refreshTokenEnv: 'T' }, 'c.json', { T: 'x' })).toThrow(
      /"refreshToken" and "refreshTokenEnv" both set the refresh token/,
    );
  });

  it('reads refreshTokenFile relative to the config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbxm-token-'));
    await writeFile(join(dir, 'token'), 'from-file\n', { mode: 0o600 });
    const config = parseConfig({ appKey: 'k', refreshTokenFile: 'token' }, join(dir, 'c.json'), {});
    expect(config.refreshToken.reveal()).toBe('from-file');
    expect(config.refreshTokenSource).toBe(`file ${join(dir, 'token')}`);
  });

  it('rejects a token file others can read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbxm-token-'));
    const file = join(dir, 'token');
    await writeFile(file, 'from-file\n');
    await chmod(file, 0o644);
    expect(() => parseConfig({ appKey: 'k', refreshTokenFile: file }, 'c.json', {})).toThrow(`chmod 600 ${file}`);
  });

  it('rejects an empty token file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbxm-token-'));
    await writeFile(join(dir, 'token'), '\n', { mode: 0o600 });
    expect(() => parseConfig({ appKey: 'k', refreshTokenFile: join(dir, 'token') }, 'c.json', {})).toThrow(/is empty/);
  });
});

describe('config file mode', () => {
  it.each([0o644, 0o640, 0o604, 0o620, 0o602])('rejects mode %o', (mode) => {
    expect(() => checkPrivateMode('/etc/x.json', 0o100000 | mode, 'config file')).toThrow('chmod 600 /etc/x.json');
  });

  it.each([0o600, 0o400])('accepts mode %o', (mode) => {
    expect(() => checkPrivateMode('/etc/x.json', 0o100000 | mode, 'config file')).not.toThrow();
  });

  it('loadConfig rejects a group-readable file', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'dbxm-config-')), 'my config.json');
    await writeFile(file, JSON.stringify({ appKey: 'k', refreshToken: 't' }));
    await chmod(file, 0o640);
    await expect(loadConfig(file)).rejects.toThrow(`chmod 600 '${file}'`);
  });

  it('quotes paths for the shell', () => {
    expect(shellQuote('/a/b.json')).toBe('/a/b.json');
    expect(shellQuote("/a b/it's")).toBe(`'/a b/it'\\''s'`);
  });
});

describe('login helpers', () => {
  it('builds an offline PKCE authorize URL', () => {
    const session = createPkceSession();
    const url = new URL(buildAuthorizeUrl('https://www.dropbox.com/oauth2/authorize', 'key', session, undefined));
    expect(url.searchParams.get('client_id')).toBe('key');
    expect(url.searchParams.get('token_access_type')).toBe('offline');
    expect(url.searchParams.get('code_challenge')).toBe(s256Challenge(session.verifier));
    expect(url.searchParams.get('state')).toBe(session.state);
    expect(url.searchParams.has('redirect_uri')).toBe(false);
    expect(session.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('parses a pasted code or URL', () => {
    expect(parsePastedCode('abc', 's')).toEqual({ code: 'abc' });
    expect(parsePastedCode('http://127.0.0.1:1/callback?code=abc&state=s', 's')).toEqual({ code: 'abc' });
    expect(parsePastedCode('http://127.0.0.1:1/callback?code=abc&state=x', 's').problem).toMatch(/wrong state/);
    expect(parsePastedCode('', 's')).toEqual({});
  });
});
