import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { defaultConfigPath, loadConfig, normalizeRoot, parseConfig } from '../../src/config/config.js';
import { UsageError } from '../../src/errors.js';

const valid = { appKey: 'key', appSecret: 'shh-secret', refreshToken: 'rt-secret-value', root: '' };

describe('parseConfig', () => {
  it('accepts a minimal config with Dropbox defaults', () => {
    const config = parseConfig({ appKey: 'k', refreshToken: 't' }, 'c.json');
    expect(config.root).toBe('');
    expect(config.apiUrl).toBe('https://api.dropboxapi.com');
    expect(config.contentUrl).toBe('https://content.dropboxapi.com');
    expect(config.notifyUrl).toBe('https://notify.dropboxapi.com');
    expect(config.appSecret).toBeUndefined();
    expect(config.refreshToken.reveal()).toBe('t');
  });

  it.each([
    [{ refreshToken: 't' }, /missing field "appKey"/],
    [{ appKey: 'k' }, /missing field "refreshToken".*dropbox-mount login --app-key/],
    [{ appKey: '', refreshToken: 't' }, /field "appKey" must be a non-empty string/],
    [{ appKey: 'k', refreshToken: 't', root: 'Photos' }, /"Photos" must start with "\/"/],
    [{ appKey: 'k', refreshToken: 't', root: 5 }, /field "root" must be a string/],
    [{ appKey: 'k', refreshToken: 't', apiUrl: 'ftp://x' }, /"apiUrl" value "ftp:\/\/x" must be http or https/],
    [{ appKey: 'k', refreshToken: 't', contentUrl: 'not a url' }, /"contentUrl" value "not a url" is not a URL/],
    [{ appKey: 'k', refreshToken: 't', refresh_token: 't' }, /unknown field "refresh_token"/],
    [[], /must contain a JSON object/],
  ])('rejects %j', (raw, message) => {
    expect(() => parseConfig(raw, 'c.json')).toThrow(UsageError);
    expect(() => parseConfig(raw, 'c.json')).toThrow(message);
  });

  it('keeps secrets out of inspect, JSON and errors', () => {
    const config = parseConfig(valid, 'c.json');
    const printed = inspect(config, { depth: 5 }) + JSON.stringify(config) + String(config.appSecret);
    expect(printed).not.toContain('shh-secret');
    expect(printed).not.toContain('rt-secret-value');
    expect(printed).toContain('[redacted]');
  });
});

describe('normalizeRoot', () => {
  it.each([
    ['', ''],
    ['/', ''],
    ['/Photos/', '/Photos'],
    ['/Photos/2024', '/Photos/2024'],
    ['id:a4ayc_80_OEAAAAAAAAAXw', 'id:a4ayc_80_OEAAAAAAAAAXw'],
  ])('normalizes %j to %j', (input, expected) => {
    expect(normalizeRoot(input, 'root')).toBe(expected);
  });

  it.each(['Photos', '/a//b', '/a/../b', 'id:', 'id:x/y'])('rejects %j', (input) => {
    expect(() => normalizeRoot(input, 'option --root')).toThrow(/option --root/);
  });
});

describe('loadConfig', () => {
  it('names a missing file and the fix', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'dbxm-config-')), 'none.json');
    await expect(loadConfig(file)).rejects.toThrow(`config file ${file} cannot be read (ENOENT)`);
  });

  it('names invalid JSON', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'dbxm-config-')), 'bad.json');
    await writeFile(file, '{"appKey": ', { mode: 0o600 });
    await expect(loadConfig(file)).rejects.toThrow(/is not valid JSON/);
  });

  it('reads a valid file', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'dbxm-config-')), 'ok.json');
    await writeFile(file, JSON.stringify({ ...valid, root: '/Docs/' }), { mode: 0o600 });
    const config = await loadConfig(file);
    expect(config.root).toBe('/Docs');
    expect(config.file).toBe(file);
  });

  it('defaults under XDG_CONFIG_HOME', () => {
    expect(defaultConfigPath({ XDG_CONFIG_HOME: '/x' })).toBe('/x/dropbox-mount/config.json');
  });
});
