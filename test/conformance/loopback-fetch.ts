/**
 * A `fetch` for the official Dropbox JS SDK that sends every request to a local emulator.
 * The SDK builds `https://{api,content,notify}.dropboxapi.com/...` URLs; this rewrites those
 * origins to the emulator's `http://127.0.0.1:PORT` and rejects any other URL, so a request
 * that would leave the machine fails the test instead of reaching the network.
 */

const DROPBOX_ORIGINS = new Set([
  'https://api.dropboxapi.com',
  'https://content.dropboxapi.com',
  'https://notify.dropboxapi.com',
]);

export interface LoopbackFetch {
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
  /** Every URL the SDK requested, before rewriting. */
  requested: string[];
}

/** Creates the fetch for an emulator at `emulatorUrl`, which must be on 127.0.0.1. */
export function loopbackFetch(emulatorUrl: string): LoopbackFetch {
  const target = new URL(emulatorUrl);
  if (target.hostname !== '127.0.0.1') {
    throw new Error(`emulator URL ${emulatorUrl} is not on 127.0.0.1`);
  }
  const requested: string[] = [];
  const fetchLoopback = async (url: string, init?: RequestInit): Promise<Response> => {
    requested.push(url);
    const parsed = new URL(url);
    if (!DROPBOX_ORIGINS.has(parsed.origin)) {
      throw new Error(`the SDK requested ${url}, which is not a Dropbox API origin; refusing to send it`);
    }
    const local = new URL(parsed.pathname + parsed.search, target);
    const response = await fetch(local, init);
    // SDK 10.34 reads download bodies with node-fetch's `buffer()`, which WHATWG fetch lacks.
    return Object.assign(response, {
      buffer: async () => Buffer.from(await response.arrayBuffer()),
    });
  };
  return { fetch: fetchLoopback, requested };
}
