/**
 * Route argument decoding and validation with Dropbox's 400 wording. Unknown fields are
 * rejected, as the real API does (`unknown field 'pat'`), so a client typo fails here too.
 */

import type { IncomingHttpHeaders } from 'node:http';
import { badInput } from './errors.js';

/** `union`: a tag string or an object with `.tag`, decoded by the route; `list`: any array. */
export type FieldType = 'string' | 'boolean' | 'uint32' | 'uint64' | 'struct' | 'union' | 'list';

export interface FieldSpec {
  type: FieldType;
  required?: boolean;
  min?: number;
  max?: number;
}

/** Field specs of a Stone struct; fields not listed are rejected. */
export type StructSpec = Record<string, FieldSpec>;

/** Source of the argument, as the error text names it. */
export type ArgSource = 'request body' | 'HTTP header "Dropbox-API-Arg"' | 'URL parameter "arg"';

/**
 * Returns the source of an upload or download route's argument: the `Dropbox-API-Arg`
 * header when the request has one, else the `arg` URL parameter.
 */
export function contentArgSource(headers: IncomingHttpHeaders): ArgSource {
  return typeof headers['dropbox-api-arg'] === 'string' ? 'HTTP header "Dropbox-API-Arg"' : 'URL parameter "arg"';
}

/** Parses JSON text of an argument; rejects with 400 `could not decode input as JSON`. */
export function decodeJsonArg(route: string, source: ArgSource, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badInput(route, `${source}: could not decode input as JSON`);
  }
}

/**
 * Validates `value` against `spec` and returns it typed as T. Rejects with a 400 naming the
 * source and field for a non-object, an unknown field, a missing field or a wrong type.
 */
export function validateStruct<T>(route: string, source: ArgSource, spec: StructSpec, value: unknown): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(route, `${source}: expected object, got ${jsonTypeName(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!(name in spec)) {
      throw badInput(route, `${source}: unknown field '${name}'`);
    }
  }
  for (const [name, field] of Object.entries(spec)) {
    const fieldValue = record[name];
    if (fieldValue === undefined) {
      if (field.required) {
        throw badInput(route, `${source}: missing required field '${name}'`);
      }
      continue;
    }
    const problem = checkField(field, fieldValue);
    if (problem !== null) {
      throw badInput(route, `${source}: ${name}: ${problem}`);
    }
  }
  return value as T;
}

/** Rejects anything but JSON `null` for a Void argument. */
export function validateVoid(route: string, value: unknown): null {
  if (value !== null) {
    throw badInput(route, `request body: expected null, got ${jsonTypeName(value)}`);
  }
  return null;
}

function checkField(field: FieldSpec, value: unknown): string | null {
  switch (field.type) {
    case 'string':
      return typeof value === 'string' ? null : `expected string, got ${jsonTypeName(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `expected boolean, got ${jsonTypeName(value)}`;
    case 'struct':
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? null
        : `expected object, got ${jsonTypeName(value)}`;
    case 'union':
      return typeof value === 'string' || (typeof value === 'object' && value !== null && !Array.isArray(value))
        ? null
        : `expected object, got ${jsonTypeName(value)}`;
    case 'list':
      return Array.isArray(value) ? null : `expected list, got ${jsonTypeName(value)}`;
    case 'uint32':
    case 'uint64':
      return checkInteger(field, value);
  }
}

function checkInteger(field: FieldSpec, value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return `expected integer, got ${jsonTypeName(value)}`;
  }
  const min = field.min ?? 0;
  const max = field.max ?? (field.type === 'uint32' ? 2 ** 32 - 1 : Number.MAX_SAFE_INTEGER);
  if (value < min || value > max) {
    return `${value} is not within range [${min}, ${max}]`;
  }
  return null;
}

function jsonTypeName(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'list';
  }
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'float';
    case 'boolean':
      return 'boolean';
    default:
      return 'object';
  }
}
