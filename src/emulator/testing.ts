/**
 * Helpers for tests that run the emulator in-process: a temporary data folder under the OS
 * temp directory, an access token, and raw HTTP calls with undici. Nothing here changes
 * request bytes beyond what a test passes, so tests see the wire format as a client does.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { toHeaderSafeJson } from '../dropbox/header-json.js';
import { startEmulator } from './server.js';
import type { Emulator, EmulatorOptions } from './types.js';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  /** Parses the body as JSON; throws when it is not JSON. */
  json(): unknown;
}

export interface TestEmulator {
  emulator: Emulator;
  dataDir: string;
  accessToken: string;
  /** POSTs `arg` as JSON to /2/<route>; pass `undefined` to send no body and no Content-Type. */
  rpc(route: string, arg: unknown, headers?: Record<string, string>): Promise<HttpReply>;
  /** POSTs `body` to an upload route with `arg` in Dropbox-API-Arg, as the SDKs do. */
  upload(route: string, arg: unknown, body: string | Buffer): Promise<HttpReply>;
  /** Sends a raw request to `path` on the emulator. */
  send(path: string, init?: SendInit): Promise<HttpReply>;
  /** Closes the emulator and starts a new one on the same folder with the same credentials. */
  restart(): Promise<void>;
  /** Closes the emulator and deletes the data folder unless the caller passed it. */
  close(): Promise<void>;
}

export interface SendInit {
  method?: 'GET' | 'POST' | 'DELETE' | 'PUT';
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** Starts an emulator on a fresh temporary data folder and fetches an access token. */
export async function startTestEmulator(options: Partial<EmulatorOptions> = {}): Promise<TestEmulator> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'dropbox-mount-emulator-')));
  // A state folder per test emulator, removed on close, so tests never share ids or revs.
  const callerStateDir = options.stateDir;
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'dropbox-mount-emulator-state-')));
  options = { ...options, stateDir };
  let emulator = await startEmulator({ ...options, dataDir });
  const test: TestEmulator = {
    emulator,
    dataDir,
    accessToken: await fetchAccessToken(emulator),
    send: (path, init = {}) => sendRequest(test.emulator.url + path, init),
    rpc: (route, arg, headers = {}) => {
      const auth = { Authorization: `Bearer ${test.accessToken}`, ...headers };
      if (arg === undefined) {
        return test.send(`/2/${route}`, { method: 'POST', headers: auth });
      }
      const json = { 'Content-Type': 'application/json', ...auth };
      return test.send(`/2/${route}`, { method: 'POST', headers: json, body: JSON.stringify(arg) });
    },
    upload: (route, arg, body) => test.send(`/2/${route}`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${test.accessToken}`,
        'Content-Type': 'application/octet-stream',
        'Dropbox-API-Arg': toHeaderSafeJson(arg),
      },
      body,
    }),
    restart: async () => {
      const { appKey, appSecret, refreshToken } = emulator;
      await emulator.close();
      emulator = await startEmulator({ ...options, dataDir, appKey, appSecret, refreshToken });
      test.emulator = emulator;
    },
    close: async () => {
      await emulator.close();
      if (options.dataDir === undefined) {
        await rm(dataDir, { recursive: true, force: true });
      }
      if (stateDir !== callerStateDir) {
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
  return test;
}

/** Exchanges the emulator's refresh token for an access token, as the daemon does. */
export async function fetchAccessToken(emulator: Emulator): Promise<string> {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: emulator.refreshToken,
    client_id: emulator.appKey,
    client_secret: emulator.appSecret,
  });
  const reply = await sendRequest(`${emulator.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  if (reply.status !== 200) {
    throw new Error(`token request failed with ${reply.status}: ${reply.text}`);
  }
  return (reply.json() as { access_token: string }).access_token;
}

/** Sends one request and reads the whole reply. */
export async function sendRequest(url: string, init: SendInit = {}): Promise<HttpReply> {
  const response = await request(url, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  const text = body.toString('utf8');
  return {
    status: response.statusCode,
    headers: response.headers,
    body,
    text,
    json: () => JSON.parse(text) as unknown,
  };
}
