// Wire facts from Dropbox API v2 where the emulator used to differ: 400 texts, autorename
// names and upload session start errors. Each test states what Dropbox sends.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

type Json = Record<string, unknown>;

const WRITE_PATH_OR_ID = `'(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)'`;
const READ_PATH = `'(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)'`;

describe('emulator fidelity: argument errors, autorename and sessions', () => {
  let test: TestEmulator;

  beforeEach(async () => {
    test = await startTestEmulator();
  });

  afterEach(async () => {
    await test.close();
  });

  async function upload(arg: Json, body: string): Promise<Json> {
    const reply = await test.upload('files/upload', arg, body);
    expect(reply.status, reply.text).toBe(200);
    return reply.json() as Json;
  }

  // Dropbox's server names versioned routes with a colon in its 400 text, e.g.
  // "files/upload_session/append:2" for /2/files/upload_session/append_v2.
  it('versioned route 400 names route:2', async () => {
    const cases: Array<[string, string]> = [
      ['files/delete_v2', 'files/delete:2'],
      ['files/move_v2', 'files/move:2'],
      ['files/copy_v2', 'files/copy:2'],
      ['files/create_folder_v2', 'files/create_folder:2'],
    ];
    for (const [route, spelled] of cases) {
      const reply = await test.rpc(route, { pat: '/x' });
      expect(reply.status, route).toBe(400);
      expect(reply.text, route).toBe(`Error in call to API function "${spelled}": request body: unknown field 'pat'`);
    }
    const append = await test.upload('files/upload_session/append_v2', { cursor: { session_id: 'x', offset: 0 }, foo: 1 }, '');
    expect(append.status).toBe(400);
    expect(append.text).toBe(
      'Error in call to API function "files/upload_session/append:2": HTTP header "Dropbox-API-Arg": unknown field \'foo\'',
    );
  });

  // Dropbox's 400 text names the argument field that failed its pattern, so for move_v2 and
  // copy_v2 it is from_path or to_path, never path.
  it('relocation pattern 400 names the field', async () => {
    await upload({ path: '/a.txt' }, 'a');
    const badTo = await test.rpc('files/move_v2', { from_path: '/a.txt', to_path: 'b.txt' });
    expect(badTo.status).toBe(400);
    expect(badTo.text).toBe(
      `Error in call to API function "files/move:2": request body: to_path: 'b.txt' did not match pattern ${WRITE_PATH_OR_ID}`,
    );
    const badFrom = await test.rpc('files/copy_v2', { from_path: 'a.txt', to_path: '/b.txt' });
    expect(badFrom.status).toBe(400);
    expect(badFrom.text).toBe(
      `Error in call to API function "files/copy:2": request body: from_path: 'a.txt' did not match pattern ${WRITE_PATH_OR_ID}`,
    );
  });

  // A content route's argument arrives in the Dropbox-API-Arg header, and its 400 texts name
  // that source (`HTTP header "Dropbox-API-Arg": unknown field 'pat'`), not a request body.
  it('header argument pattern 400 names the header', async () => {
    const uploaded = await test.upload('files/upload', { path: 'a.txt' }, 'a');
    expect(uploaded.status).toBe(400);
    expect(uploaded.text).toBe(
      `Error in call to API function "files/upload": HTTP header "Dropbox-API-Arg": path: 'a.txt' did not match pattern ${WRITE_PATH_OR_ID}`,
    );
    const downloaded = await test.send('/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${test.accessToken}`, 'Dropbox-API-Arg': toHeaderSafeJson({ path: 'a.txt' }) },
    });
    expect(downloaded.status).toBe(400);
    expect(downloaded.text).toBe(
      `Error in call to API function "files/download": HTTP header "Dropbox-API-Arg": path: 'a.txt' did not match pattern ${READ_PATH}`,
    );
    const query = encodeURIComponent(JSON.stringify({ path: 'a.txt' }));
    const viaQuery = await test.send(`/2/files/download?arg=${query}`, {
      headers: { Authorization: `Bearer ${test.accessToken}` },
    });
    expect(viaQuery.status).toBe(400);
    expect(viaQuery.text).toBe(
      `Error in call to API function "files/download": URL parameter "arg": path: 'a.txt' did not match pattern ${READ_PATH}`,
    );
  });

  // Dropbox's autorename gives `name (2).ext` for the first renamed copy, never `name (1).ext`.
  it('autorename numbering starts at (2)', async () => {
    await upload({ path: '/a.txt' }, 'one');
    const second = await upload({ path: '/a.txt', autorename: true }, 'two');
    expect(second.name).toBe('a (2).txt');
    const third = await upload({ path: '/a.txt', autorename: true }, 'three');
    expect(third.name).toBe('a (3).txt');

    await test.rpc('files/create_folder_v2', { path: '/Docs' });
    const folder = await test.rpc('files/create_folder_v2', { path: '/Docs', autorename: true });
    expect(folder.status).toBe(200);
    expect((folder.json() as { metadata: Json }).metadata.name).toBe('Docs (2)');

    const copied = await test.rpc('files/copy_v2', { from_path: '/a.txt', to_path: '/a.txt', autorename: true });
    expect(copied.status).toBe(200);
    expect((copied.json() as { metadata: Json }).metadata.name).toBe('a (4).txt');
  });

  // UploadSessionStartError: a concurrent session is closed by its last append, never by
  // start, so `close: true` with session_type concurrent fails.
  it('concurrent session start rejects close', async () => {
    const reply = await test.upload('files/upload_session/start', { session_type: 'concurrent', close: true }, '');
    expect(reply.status).toBe(409);
    const body = reply.json() as { error: Json; error_summary: string };
    expect(body.error).toEqual({ '.tag': 'concurrent_session_close_not_allowed' });
    expect(body.error_summary).toMatch(/^concurrent_session_close_not_allowed\/\.{0,3}$/);
  });
});
