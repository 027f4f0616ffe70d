import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { parseBandwidth } from '../../src/emulator/shaping.js';
import { startTestEmulator, type HttpReply, type TestEmulator } from '../../src/emulator/testing.js';

const MIB = 1024 * 1024;

// Timing bands are broad on purpose: CI machines are shared and timers overshoot under load.
describe('emulator shaping', () => {
  let test: TestEmulator | undefined;

  afterEach(async () => {
    await test?.close();
    test = undefined;
  });

  async function start(options: { latencyMs?: number; bandwidthBytesPerSecond?: number }): Promise<TestEmulator> {
    test = await startTestEmulator(options);
    return test;
  }

  function download(emulator: TestEmulator, path: string): Promise<HttpReply> {
    return emulator.send('/2/files/download', {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${emulator.accessToken}`,
        'Dropbox-API-Arg': toHeaderSafeJson({ path }),
      },
    });
  }

  async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = performance.now();
    const value = await run();
    return { value, ms: performance.now() - started };
  }

  it('latency delays each call by at least 100 ms', async () => {
    const emulator = await start({ latencyMs: 100 });
    await writeFile(join(emulator.dataDir, 'a.txt'), 'a');
    for (let i = 0; i < 3; i += 1) {
      const { value, ms } = await timed(() => emulator.rpc('files/get_metadata', { path: '/a.txt' }));
      expect(value.status).toBe(200);
      expect(ms).toBeGreaterThanOrEqual(100);
    }
  });

  it('control calls are never delayed', async () => {
    const emulator = await start({ latencyMs: 2000 });
    const { value, ms } = await timed(() => emulator.send('/_emulator/shaping'));
    expect(value.json()).toEqual({ latencyMs: 2000, bandwidthBytesPerSecond: 0 });
    expect(ms).toBeLessThan(1000);
  });

  it('4 MiB at 4 MiB/s takes about 1 s', async () => {
    const emulator = await start({ bandwidthBytesPerSecond: 4 * MIB });
    const content = randomBytes(4 * MIB);
    await writeFile(join(emulator.dataDir, 'big.bin'), content);
    const { value, ms } = await timed(() => download(emulator, '/big.bin'));
    expect(value.status).toBe(200);
    expect(value.body.equals(content)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(800);
    expect(ms).toBeLessThanOrEqual(1600);
    expect(emulator.emulator.calls().at(-1)?.bytes).toBe(4 * MIB);
  });

  it('concurrent downloads share one bucket', async () => {
    const emulator = await start({ bandwidthBytesPerSecond: 4 * MIB });
    await writeFile(join(emulator.dataDir, 'one.bin'), randomBytes(2 * MIB));
    await writeFile(join(emulator.dataDir, 'two.bin'), randomBytes(2 * MIB));
    const { value, ms } = await timed(() =>
      Promise.all([download(emulator, '/one.bin'), download(emulator, '/two.bin')]),
    );
    expect(value.map((reply) => reply.body.length)).toEqual([2 * MIB, 2 * MIB]);
    expect(ms).toBeGreaterThanOrEqual(800);
    expect(ms).toBeLessThanOrEqual(1600);
  });

  it('request bodies are paced too', async () => {
    const emulator = await start({ bandwidthBytesPerSecond: 512 * 1024 });
    // A 512 KiB argument is read whole before the unknown field is rejected.
    const body = JSON.stringify({ path: '/a.txt', padding: 'x'.repeat(512 * 1024 - 30) });
    const { value, ms } = await timed(() =>
      emulator.send('/2/files/get_metadata', {
        method: 'POST',
        headers: { Authorization: `Bearer ${emulator.accessToken}`, 'Content-Type': 'application/json' },
        body,
      }),
    );
    expect(value.status).toBe(400);
    expect(ms).toBeGreaterThanOrEqual(800);
    expect(ms).toBeLessThanOrEqual(1600);
  });

  it('control endpoint changes shaping at run time', async () => {
    const emulator = await start({});
    await writeFile(join(emulator.dataDir, 'big.bin'), randomBytes(2 * MIB));
    const unshaped = await timed(() => download(emulator, '/big.bin'));
    expect(unshaped.ms).toBeLessThan(500);
    const set = await emulator.send('/_emulator/shaping', {
      method: 'POST',
      body: JSON.stringify({ latencyMs: 100, bandwidthBytesPerSecond: 4 * MIB }),
    });
    expect(set.json()).toEqual({ latencyMs: 100, bandwidthBytesPerSecond: 4 * MIB });
    const shaped = await timed(() => download(emulator, '/big.bin'));
    expect(shaped.ms).toBeGreaterThanOrEqual(500);
    expect(shaped.ms).toBeLessThanOrEqual(1000);
    const partial = await emulator.send('/_emulator/shaping', {
      method: 'POST',
      body: JSON.stringify({ bandwidthBytesPerSecond: 0 }),
    });
    expect(partial.json()).toEqual({ latencyMs: 100, bandwidthBytesPerSecond: 0 });
  });

  it('control endpoint rejects invalid values', async () => {
    const emulator = await start({});
    const cases: Array<[unknown, string]> = [
      [{ latencyMs: -1 }, '"latencyMs" value -1 is invalid'],
      [{ latencyMs: 1.5 }, '"latencyMs" value 1.5 is invalid'],
      [{ bandwidthBytesPerSecond: '4M' }, '"bandwidthBytesPerSecond" value "4M" is invalid'],
      [{ bandwidth: 1 }, 'unknown field "bandwidth"'],
      [[], 'must be a JSON object'],
    ];
    for (const [settings, message] of cases) {
      const reply = await emulator.send('/_emulator/shaping', { method: 'POST', body: JSON.stringify(settings) });
      expect(reply.status, JSON.stringify(settings)).toBe(400);
      expect(reply.text, JSON.stringify(settings)).toContain(message);
    }
  });
});

describe('parseBandwidth', () => {
  it('reads 1024-based suffixes', () => {
    const cases: Array<[string, number]> = [
      ['0', 0],
      ['1000', 1000],
      ['512k', 512 * 1024],
      ['4M', 4 * MIB],
      ['4MiB/s', 4 * MIB],
      ['1.5G', 1.5 * 1024 * MIB],
      ['100 MB', 100 * MIB],
    ];
    for (const [text, bytes] of cases) {
      expect(parseBandwidth(text), text).toBe(bytes);
    }
  });

  it('rejects other forms with the fix', () => {
    for (const text of ['', 'fast', '-4M', '4T', '4 Mbit']) {
      expect(() => parseBandwidth(text), text).toThrow(/use bytes per second with an optional K, M or G suffix/);
    }
  });
});
