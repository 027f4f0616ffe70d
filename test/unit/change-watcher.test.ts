import { describe, expect, it } from 'vitest';
import { ChangeWatcher } from '../../src/cache/change-watcher.js';
import type { MetadataCache } from '../../src/cache/metadata-cache.js';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { ApiError, RetryableStatusError } from '../../src/dropbox/errors.js';
import type { Metadata } from '../../src/dropbox/types.js';
import { silentLogger } from '../../src/log/logger.js';

type Step = { route: string; result?: unknown; error?: Error };

// A fake client that returns the next scripted step for each call's route. A call with no
// step left never settles, like a longpoll with nothing to report.
function scriptedClient(steps: Step[]) {
  const calls: { route: string; arg: unknown; at: number }[] = [];
  const answer = async (route: string, arg: unknown) => {
    calls.push({ route, arg, at: Date.now() });
    const index = steps.findIndex((step) => step.route === route);
    if (index === -1) return new Promise(() => {});
    const [step] = steps.splice(index, 1);
    if (step?.error) throw step.error;
    return step?.result;
  };
  const client = {
    rpc: answer,
    notifyRpc: (route: string, arg: unknown, options: { timeoutMs: number }) => {
      expect(options.timeoutMs).toBeGreaterThan(((arg as { timeout: number }).timeout + 90) * 1000);
      return answer(route, arg);
    },
  };
  return { client: client as unknown as DropboxClient, calls };
}

function recordingCache() {
  const events: string[] = [];
  const cache = {
    applyChanges: (entries: Metadata[]) => events.push(`apply ${entries.map((entry) => entry.name).join(',')}`),
    clear: () => events.push('clear'),
  };
  return { cache: cache as unknown as MetadataCache, events };
}

const deletedEntry = (name: string): Metadata => ({ '.tag': 'deleted', name, path_lower: `/${name}` });
const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

describe('ChangeWatcher', () => {
  it('applies changes after a longpoll', async () => {
    const { client, calls } = scriptedClient([
      { route: 'files/list_folder/get_latest_cursor', result: { cursor: 'c1' } },
      { route: 'files/list_folder/longpoll', result: { changes: true } },
      { route: 'files/list_folder/continue', result: { entries: [deletedEntry('a')], cursor: 'c2', has_more: true } },
      { route: 'files/list_folder/continue', result: { entries: [deletedEntry('b')], cursor: 'c3', has_more: false } },
    ]);
    const { cache, events } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '/Root', log: silentLogger() });
    watcher.start();
    await waitFor(() => calls.filter((call) => call.route === 'files/list_folder/longpoll').length === 2);
    await watcher.stop();
    expect(events).toEqual(['apply a', 'apply b']);
    expect(calls[0]?.arg).toEqual({ path: '/Root', recursive: true });
    expect(calls.at(-1)?.arg).toEqual({ cursor: 'c3', timeout: 30 });
  });

  it('starts from a seeded cursor', async () => {
    const { client, calls } = scriptedClient([]);
    const { cache } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '', log: silentLogger() });
    watcher.start(Promise.resolve('seed'));
    await waitFor(() => calls.length === 1);
    await watcher.stop();
    expect(calls.map((call) => call.route)).toEqual(['files/list_folder/longpoll']);
    expect(calls[0]?.arg).toEqual({ cursor: 'seed', timeout: 30 });
  });

  it('clears the cache after a reset', async () => {
    const { client, calls } = scriptedClient([
      { route: 'files/list_folder/longpoll', result: { changes: true } },
      { route: 'files/list_folder/continue', error: new ApiError('files/list_folder/continue', 409, ['reset'], {}) },
      { route: 'files/list_folder/get_latest_cursor', result: { cursor: 'fresh' } },
    ]);
    const { cache, events } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '', log: silentLogger() });
    watcher.start(Promise.resolve('old'));
    await waitFor(() => calls.length === 4);
    await watcher.stop();
    expect(events).toEqual(['clear']);
    expect(calls.at(-1)?.arg).toEqual({ cursor: 'fresh', timeout: 30 });
  });

  it('backs off after errors', async () => {
    const failure = () => ({ route: 'files/list_folder/longpoll', error: new RetryableStatusError('longpoll', 503, undefined) });
    const { client, calls } = scriptedClient([failure(), failure(), failure()]);
    const { cache } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '', log: silentLogger(), retryBaseMs: 40 });
    watcher.start(Promise.resolve('c'));
    await waitFor(() => calls.length === 4);
    await watcher.stop();
    const gaps = calls.slice(1).map((call, i) => call.at - (calls[i]?.at ?? 0));
    // Jitter keeps each delay between half and all of 40, 80 and 160 ms.
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(78);
  });

  it('honours longpoll backoff', async () => {
    const { client, calls } = scriptedClient([{ route: 'files/list_folder/longpoll', result: { changes: false, backoff: 1 } }]);
    const { cache } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '', log: silentLogger() });
    watcher.start(Promise.resolve('c'));
    await waitFor(() => calls.length === 2);
    await watcher.stop();
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(990);
  });

  it('stops while a longpoll is pending', async () => {
    const { client, calls } = scriptedClient([]);
    const { cache } = recordingCache();
    const watcher = new ChangeWatcher({ client, cache, rootPath: '', log: silentLogger() });
    watcher.start(Promise.resolve('c'));
    await waitFor(() => calls.length === 1);
    const started = Date.now();
    await watcher.stop();
    expect(Date.now() - started).toBeLessThan(100);
  });
});
