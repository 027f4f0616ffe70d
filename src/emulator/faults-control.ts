/**
 * Control endpoints for faults and shaping, served under /_emulator:
 * - GET /_emulator/faults: the rules in force, with `id` and `remaining` (null: no limit).
 * - POST /_emulator/faults: adds one rule, a JSON FaultRule such as
 *   `{"route":"files/download","fault":"cut-after","bytes":1048576,"times":1}`; returns it.
 * - DELETE /_emulator/faults: clears every rule.
 * - GET /_emulator/shaping: `{latencyMs, bandwidthBytesPerSecond}`.
 * - POST /_emulator/shaping: changes the given fields, keeps the others, returns the result.
 * Invalid input gets a 400 plain-text message naming the field and the accepted values.
 */

import type { EmulatorContext } from './context.js';
import { plainError } from './errors.js';
import { readBody, sendBody, sendJson, type Exchange } from './exchange.js';
import { InvalidFaultRuleError, validateFaultRule } from './faults.js';
import { InvalidShapingError, validateShaping } from './shaping.js';

export const FAULTS_PATH = '/_emulator/faults';
export const SHAPING_PATH = '/_emulator/shaping';

const MAX_CONTROL_BODY_BYTES = 64 * 1024;

/** Serves /_emulator/faults; throws the HttpError for a rejected request. */
export async function serveFaultsControl(context: EmulatorContext, exchange: Exchange): Promise<void> {
  switch (exchange.req.method) {
    case 'GET':
      sendJson(exchange, context.faults.list());
      return;
    case 'POST': {
      const value = await readJson(exchange);
      const rule = checked(() => validateFaultRule(value));
      sendJson(exchange, context.faults.add(rule));
      return;
    }
    case 'DELETE':
      context.faults.clear();
      sendBody(exchange, 204, '', '');
      return;
    default:
      throw plainError(405, 'Use GET to read the fault rules, POST to add one or DELETE to clear them.', {
        Allow: 'GET, POST, DELETE',
      });
  }
}

/** Serves /_emulator/shaping; throws the HttpError for a rejected request. */
export async function serveShapingControl(context: EmulatorContext, exchange: Exchange): Promise<void> {
  switch (exchange.req.method) {
    case 'GET':
      sendJson(exchange, context.shaping.settings());
      return;
    case 'POST': {
      const value = await readJson(exchange);
      context.shaping.update(checked(() => validateShaping(value)));
      sendJson(exchange, context.shaping.settings());
      return;
    }
    default:
      throw plainError(405, 'Use GET to read the shaping settings or POST to change them.', {
        Allow: 'GET, POST',
      });
  }
}

async function readJson(exchange: Exchange): Promise<unknown> {
  const text = (await readBody(exchange, MAX_CONTROL_BODY_BYTES)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw plainError(400, `The request body is not valid JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
}

/** Runs a validator and turns its error into a 400 carrying the same message. */
function checked<T>(validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (error instanceof InvalidFaultRuleError || error instanceof InvalidShapingError) {
      throw plainError(400, `Invalid ${subjectOf(error)}: ${error.message}.`);
    }
    throw error;
  }
}

function subjectOf(error: Error): string {
  return error instanceof InvalidFaultRuleError ? 'fault rule' : 'shaping settings';
}
