/**
 * Account settings that tests change while the emulator runs, served under /_emulator:
 * - GET /_emulator/account: `{quotaBytes, usedBytes, readOnlyPaths}`.
 * - POST /_emulator/account: changes the given fields of `{quotaBytes?, readOnlyPaths?}`,
 *   keeps the others and returns the result.
 * `quotaBytes` is the allocation that users/get_space_usage reports and that uploads and
 * copies are checked against (`insufficient_space`, `insufficient_quota`). `readOnlyPaths`
 * lists folders, as "/Folder/Sub" in any case, where API writes fail with
 * `no_write_permission`; the list replaces the previous one. Invalid input gets a 400.
 */

import type { EmulatorContext } from './context.js';
import { plainError } from './errors.js';
import { readBody, sendJson, type Exchange } from './exchange.js';
import { lowerName } from './paths.js';

export const ACCOUNT_PATH = '/_emulator/account';

const MAX_CONTROL_BODY_BYTES = 64 * 1024;

export interface AccountSettings {
  /** Allocated space in bytes. */
  quotaBytes: number;
  /** Read-only folders as `path_lower`s. */
  readOnlyPaths: string[];
}

/** An invalid account setting; the message names the field and the accepted values. */
export class InvalidAccountSettingsError extends Error {
  override readonly name = 'InvalidAccountSettingsError';
}

/** Checks a JSON settings object; throws InvalidAccountSettingsError naming the bad field. */
export function validateAccountSettings(value: unknown): Partial<AccountSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidAccountSettingsError('the body must be a JSON object such as {"quotaBytes":1000}');
  }
  const input = value as Record<string, unknown>;
  const settings: Partial<AccountSettings> = {};
  for (const [field, fieldValue] of Object.entries(input)) {
    if (field === 'quotaBytes') {
      if (typeof fieldValue !== 'number' || !Number.isSafeInteger(fieldValue) || fieldValue < 0) {
        throw new InvalidAccountSettingsError(`"quotaBytes" must be a whole number of bytes, got ${JSON.stringify(fieldValue)}`);
      }
      settings.quotaBytes = fieldValue;
    } else if (field === 'readOnlyPaths') {
      settings.readOnlyPaths = readOnlyPathsOf(fieldValue);
    } else {
      throw new InvalidAccountSettingsError(`unknown field "${field}"; known fields: quotaBytes, readOnlyPaths`);
    }
  }
  return settings;
}

function readOnlyPathsOf(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw new InvalidAccountSettingsError('"readOnlyPaths" must be an array of paths such as ["/Shared"]');
  }
  return value.map((path: unknown) => {
    if (typeof path !== 'string' || !path.startsWith('/') || path.endsWith('/')) {
      throw new InvalidAccountSettingsError(`"readOnlyPaths" entries must be paths such as "/Shared", got ${JSON.stringify(path)}`);
    }
    return path.split('/').map(lowerName).join('/');
  });
}

/** Applies validated settings to the running emulator. */
export function applyAccountSettings(context: EmulatorContext, settings: Partial<AccountSettings>): void {
  if (settings.quotaBytes !== undefined) {
    context.quotaBytes = settings.quotaBytes;
  }
  if (settings.readOnlyPaths !== undefined) {
    const { readOnlyPaths } = context.state.account;
    readOnlyPaths.clear();
    for (const path of settings.readOnlyPaths) {
      readOnlyPaths.add(path);
    }
  }
}

/** Serves /_emulator/account; throws the HttpError for a rejected request. */
export async function serveAccountControl(context: EmulatorContext, exchange: Exchange): Promise<void> {
  switch (exchange.req.method) {
    case 'GET':
      break;
    case 'POST': {
      const text = (await readBody(exchange, MAX_CONTROL_BODY_BYTES)).toString('utf8');
      try {
        applyAccountSettings(context, validateAccountSettings(JSON.parse(text) as unknown));
      } catch (error) {
        if (error instanceof InvalidAccountSettingsError || error instanceof SyntaxError) {
          throw plainError(400, `Invalid account settings: ${error.message}.`);
        }
        throw error;
      }
      break;
    }
    default:
      throw plainError(405, 'Use GET to read the account settings or POST to change them.', { Allow: 'GET, POST' });
  }
  const { account } = context.state;
  sendJson(exchange, {
    quotaBytes: context.quotaBytes,
    usedBytes: account.catalog.usedBytes,
    readOnlyPaths: [...account.readOnlyPaths],
  });
}
