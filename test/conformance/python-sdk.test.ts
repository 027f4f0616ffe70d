// The official Dropbox Python SDK (Debian's python3-dropbox 11.34 under /usr/bin/python3) run
// against the emulator through python_sdk_scenario.py. The script runs every step once and
// prints one JSON report per step, and each test below checks one report.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../../src/emulator/testing.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./python_sdk_scenario.py', import.meta.url));
const STEPS = [
  'token_refresh',
  'create_folder',
  'upload_one_call',
  'upload_session',
  'incorrect_offset',
  'list_and_paginate',
  'metadata_by_path_id_rev',
  'ranged_download',
  'move_copy_delete',
  'longpoll_sees_change',
  'error_tags',
  'all_requests_local',
];

interface StepReport {
  step: string;
  ok: boolean;
  error?: string;
}

describe('official Python SDK against the emulator', () => {
  let test: TestEmulator;
  const reports = new Map<string, StepReport>();

  beforeAll(async () => {
    test = await startTestEmulator();
    test.emulator.clearCalls();
    const { emulator } = test;
    // The credentials go in the environment: a failed command's error message shows its
    // arguments, and secrets must never reach a log or an error message.
    const env = {
      ...process.env,
      DROPBOX_APP_KEY: emulator.appKey,
      DROPBOX_APP_SECRET: emulator.appSecret,
      DROPBOX_REFRESH_TOKEN: emulator.refreshToken,
    };
    const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, emulator.url], { timeout: 90_000, env });
    for (const line of stdout.split('\n').filter((text) => text.trim() !== '')) {
      const report = JSON.parse(line) as StepReport;
      reports.set(report.step, report);
    }
  }, 120_000);

  afterAll(async () => {
    await test.close();
  });

  it.each(STEPS)('step %s', (step) => {
    const report = reports.get(step);
    expect(report, `no report for ${step}`).toBeDefined();
    expect(report?.ok, report?.error).toBe(true);
  });

  it('the emulator served every request', () => {
    const routes = test.emulator.calls().map((call) => call.route);
    expect(routes[0]).toBe('oauth2/token');
    expect(routes).toContain('files/list_folder/longpoll');
  });
});
