import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runEmulatorCommand, type EmulatorArgs } from '../../src/cli/emulator-command.js';
import { UsageError } from '../../src/errors.js';
import { parseFaultRule } from '../../src/emulator/faults.js';
import { sendRequest } from '../../src/emulator/testing.js';
import { silentLogger } from '../../src/log/logger.js';

describe('emulator command faults and shaping', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'emulator-faults-cli-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function args(overrides: Partial<EmulatorArgs>): EmulatorArgs {
    return { data: dir, host: '127.0.0.1', port: 0, root: '', ...overrides };
  }

  async function rejection(overrides: Partial<EmulatorArgs>): Promise<UsageError> {
    const run = runEmulatorCommand(args(overrides), {
      log: silentLogger(),
      stdout: () => undefined,
      stop: Promise.resolve(),
    });
    const error = await run.then(() => undefined, (reason: unknown) => reason);
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }

  it('starts with the given rules and shaping', async () => {
    const output: string[] = [];
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const running = runEmulatorCommand(
      args({
        fault: ['files/download:cut-after=1048576,times=1', '*:429,retry-after=2,reason=too_many_write_operations'],
        latencyMs: 5,
        bandwidth: '100M',
      }),
      { log: silentLogger(), stdout: (text) => output.push(text), stop: stopped },
    );
    while (output.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const url = /listening on (\S+)/.exec(output[0] as string)?.[1] as string;
    const faults = await sendRequest(`${url}/_emulator/faults`);
    expect(faults.json()).toEqual([
      { id: 1, route: 'files/download', fault: 'cut-after', bytes: 1048576, times: 1, remaining: 1 },
      { id: 2, route: '*', fault: '429', retryAfterSeconds: 2, reason: 'too_many_write_operations', remaining: null },
    ]);
    const shaping = await sendRequest(`${url}/_emulator/shaping`);
    expect(shaping.json()).toEqual({ latencyMs: 5, bandwidthBytesPerSecond: 100 * 1024 * 1024 });
    stop();
    await running;
  });

  it('rejects invalid values with a usage error', async () => {
    const cases: Array<[Partial<EmulatorArgs>, string]> = [
      [{ fault: ['files/download'] }, 'option --fault value "files/download" is invalid: expected ROUTE:FAULT'],
      [{ fault: ['*:cut-after=ten'] }, '"cut-after" must be a whole number, got "ten"'],
      [{ fault: ['*:429,wait=1'] }, 'unknown option "wait=1"'],
      [{ fault: ['*:teapot'] }, '"fault" must be one of 429, 500, 503'],
      [{ latencyMs: -5 }, 'option --latency-ms value -5 is invalid; use whole milliseconds'],
      [{ latencyMs: Number.NaN }, 'option --latency-ms value NaN is invalid'],
      [{ bandwidth: 'fast' }, 'option --bandwidth value "fast" is invalid; use bytes per second'],
    ];
    for (const [overrides, message] of cases) {
      const error = await rejection(overrides);
      expect(error.message, JSON.stringify(overrides)).toContain(message);
      expect(error.message, JSON.stringify(overrides)).not.toContain('\n');
    }
  });
});

describe('parseFaultRule', () => {
  it('reads every fault kind', () => {
    expect(parseFaultRule('files/download:cut-after=1048576,times=1')).toEqual({
      route: 'files/download',
      fault: 'cut-after',
      bytes: 1048576,
      times: 1,
    });
    expect(parseFaultRule('files/download:change-after=0,content=new')).toEqual({
      route: 'files/download',
      fault: 'change-after',
      bytes: 0,
      content: 'new',
    });
    for (const fault of ['500', '503', 'expired-token', 'black-hole', 'reset'] as const) {
      expect(parseFaultRule(`*:${fault}`)).toEqual({ route: '*', fault });
    }
    expect(parseFaultRule('oauth2/token:429,retry-after=7')).toEqual({
      route: 'oauth2/token',
      fault: '429',
      retryAfterSeconds: 7,
    });
  });
});
