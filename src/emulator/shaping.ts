/**
 * Network shaping: added latency and a bandwidth cap, so a benchmark or test sees what a
 * client on a real link would see. Latency is a delay before each response's headers.
 * Bandwidth is one token bucket shared by every request body read and every response body
 * written, uploads and downloads alike. At the defaults (0 and 0) nothing is delayed or
 * paced, and the request and response paths skip this module entirely.
 */

import { setTimeout as sleep } from 'node:timers/promises';

export interface ShapingSettings {
  /** Added round-trip time per request, in milliseconds; 0 for none. */
  latencyMs: number;
  /** Cap on all request and response body bytes together, in bytes per second; 0 for none. */
  bandwidthBytesPerSecond: number;
}

/** An invalid shaping value; the message names the value and the accepted form. */
export class InvalidShapingError extends Error {
  override readonly name = 'InvalidShapingError';
}

// One hour: a larger latency is a typo, and it would outlive any client timeout.
const MAX_LATENCY_MS = 3_600_000;

// A slice carries about 10 ms of traffic, so pacing stays smooth at low rates and costs only
// about 100 timers per second at high ones. Slices stay within 1 KiB..1 MiB.
const SLICE_MS = 10;
const MIN_SLICE_BYTES = 1024;
const MAX_SLICE_BYTES = 1024 * 1024;

// The bucket holds this much time's worth of bytes, so a body may start with one slice sent
// at once without going over the rate by more than this over any period.
const BURST_MS = SLICE_MS;

/**
 * A token bucket kept as one time: the moment at which the bytes taken so far have drained
 * at the configured rate. Waiting until that time, not for a fixed period per chunk, keeps
 * timer overshoot from adding up over a long transfer.
 */
export class TokenBucket {
  private drainedAt = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Bytes per slice that the body writers and readers pass to `take`. */
  get sliceBytes(): number {
    const bytes = Math.floor((this.bytesPerSecond * SLICE_MS) / 1000);
    return Math.min(MAX_SLICE_BYTES, Math.max(MIN_SLICE_BYTES, bytes));
  }

  /** Resolves when `bytes` more may pass without exceeding the rate. */
  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.drainedAt = Math.max(this.drainedAt, now) + (bytes * 1000) / this.bytesPerSecond;
    const waitMs = this.drainedAt - now - BURST_MS;
    if (waitMs > 0) {
      await sleep(waitMs);
    }
  }
}

/** The shaping state of one emulator; the control endpoint changes it while running. */
export class Shaping {
  latencyMs = 0;
  /** Null when bandwidth is not capped, so callers take the unpaced path. */
  bucket: TokenBucket | null = null;
  private bandwidthBytesPerSecond = 0;

  constructor(settings: Partial<ShapingSettings> = {}) {
    this.update(settings);
  }

  settings(): ShapingSettings {
    return { latencyMs: this.latencyMs, bandwidthBytesPerSecond: this.bandwidthBytesPerSecond };
  }

  /** Applies the given fields and keeps the others. A new rate starts with an empty bucket. */
  update(settings: Partial<ShapingSettings>): void {
    if (settings.latencyMs !== undefined) {
      this.latencyMs = settings.latencyMs;
    }
    const rate = settings.bandwidthBytesPerSecond;
    if (rate !== undefined) {
      this.bandwidthBytesPerSecond = rate;
      this.bucket = rate === 0 ? null : new TokenBucket(rate);
    }
  }

  /** Waits out the added latency; callers skip the call when `latencyMs` is 0. */
  async delay(): Promise<void> {
    await sleep(this.latencyMs);
  }
}

/**
 * Checks the JSON body of `POST /_emulator/shaping`. Omitted fields are left out of the
 * result, so they keep their value. Throws InvalidShapingError naming the bad field.
 */
export function validateShaping(value: unknown): Partial<ShapingSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidShapingError('shaping must be a JSON object such as {"latencyMs":100,"bandwidthBytesPerSecond":4194304}');
  }
  const input = value as Record<string, unknown>;
  const result: Partial<ShapingSettings> = {};
  for (const [field, fieldValue] of Object.entries(input)) {
    if (field === 'latencyMs') {
      result.latencyMs = checkLatencyMs(fieldValue, '"latencyMs"');
    } else if (field === 'bandwidthBytesPerSecond') {
      result.bandwidthBytesPerSecond = checkBandwidth(fieldValue, '"bandwidthBytesPerSecond"');
    } else {
      throw new InvalidShapingError(`unknown field "${field}"; known fields: latencyMs, bandwidthBytesPerSecond`);
    }
  }
  return result;
}

/** Checks a latency in milliseconds; `name` goes into the error message. */
export function checkLatencyMs(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_LATENCY_MS) {
    throw new InvalidShapingError(
      `${name} value ${typeof value === 'number' ? String(value) : JSON.stringify(value)} is invalid; use whole milliseconds from 0 (none) to ${MAX_LATENCY_MS}`,
    );
  }
  return value;
}

function checkBandwidth(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidShapingError(
      `${name} value ${JSON.stringify(value)} is invalid; use whole bytes per second, or 0 for no limit`,
    );
  }
  return value;
}

const RATE_SUFFIXES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses a rate in bytes per second with an optional 1024-based K, M or G suffix, e.g.
 * `4M`, `512k`, `100MiB/s` or `0` (no limit). Throws InvalidShapingError.
 */
export function parseBandwidth(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:\/s)?$/i.exec(text.trim());
  const suffix = match?.[2]?.toLowerCase() ?? '';
  const bytes = match === null ? NaN : Math.round(Number(match[1]) * (RATE_SUFFIXES[suffix] ?? NaN));
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidShapingError(
      `value "${text}" is invalid; use bytes per second with an optional K, M or G suffix ` +
        '(1024-based), e.g. 4M, or 0 for no limit',
    );
  }
  return bytes;
}
