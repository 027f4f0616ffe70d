import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runEmulatorCommand, type EmulatorArgs } from '../../src/cli/emulator-command.js';
import { UsageError } from '../../src/errors.js';
import { silentLogger } from '../../src/log/logger.js';
import { sendRequest } from '../../src/emulator/testing.js';

describe('emulator command', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'emulator-cli-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function args(overrides: Partial<EmulatorArgs>): EmulatorArgs {
    return { data: dir, host: '127.0.0.1', port: 0, root: '', ...overrides };
  }

  it('prints the URL, writes the config and stops', async () => {
    const output: string[] = [];
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const configFile = join(dir, 'conf', 'config.json');
    const running = runEmulatorCommand(
      args({ writeConfig: configFile, appSecret: 's3cret', refreshToken: 'r3fresh', root: '/Sub' }),
      { log: silentLogger(), stdout: (text) => output.push(text), stop: stopped },
    );
    while (output.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(output).toHaveLength(1);
    const match = /^emulator listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(output[0] as string);
    expect(match).not.toBeNull();
    expect(output[0]).not.toContain('s3cret');
    const url = match?.[1] as string;
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, string>;
    expect(config).toMatchObject({ appSecret: 's3cret', refreshToken: 'r3fresh', root: '/Sub', apiUrl: url });
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    const token = await sendRequest(`${url}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&refresh_token=r3fresh&client_id=emulator-app-key&client_secret=s3cret',
    });
    expect(token.status).toBe(200);
    stop();
    await running;
    await expect(sendRequest(`${url}/_emulator/calls`)).rejects.toThrow();
  });

  it('rejects a missing data folder with a usage error', async () => {
    const missing = join(dir, 'missing');
    const run = runEmulatorCommand(args({ data: missing }), { log: silentLogger(), stdout: () => undefined, stop: Promise.resolve() });
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(`option --data value "${missing}" does not exist; create it with: mkdir -p ${missing}`);
  });

  it('rejects a data path that is a file', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const run = runEmulatorCommand(args({ data: file }), { log: silentLogger(), stdout: () => undefined, stop: Promise.resolve() });
    await expect(run).rejects.toThrow(`option --data value "${file}" is not a folder; pass the folder to serve`);
  });

  it('rejects a bad port or token TTL', async () => {
    const io = { log: silentLogger(), stdout: () => undefined, stop: Promise.resolve() };
    await expect(runEmulatorCommand(args({ port: 70000 }), io)).rejects.toThrow(/--port/);
    await expect(runEmulatorCommand(args({ tokenTtl: 0 }), io)).rejects.toThrow(/--token-ttl/);
  });
});
