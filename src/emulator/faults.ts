/**
 * The fault rule table. Every API request consults it once, before any route work, and at
 * most one rule applies per request: the first rule, in the order added, whose route matches.
 * A rule applies to its next `times` matching calls, or to every matching call until cleared.
 *
 * Rules come from the control endpoint (`POST /_emulator/faults` with the JSON form) or from
 * the CLI at start (`--fault` with the text form that `parseFaultRule` reads). Both forms go
 * through `validateFaultRule`, so they accept the same rules.
 */

export const FAULT_KINDS = [
  '429',
  '500',
  '503',
  'expired-token',
  'cut-after',
  'cut-request-after',
  'too-many-write-operations',
  'black-hole',
  'change-after',
  'reset',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export const RATE_LIMIT_REASONS = ['too_many_requests', 'too_many_write_operations'] as const;

export type RateLimitReason = (typeof RATE_LIMIT_REASONS)[number];

/** Faults that act on a response body, so they only match download-style routes. */
const BODY_FAULTS: ReadonlySet<FaultKind> = new Set(['cut-after', 'change-after']);

/** Faults that need `bytes`: the response faults above and the request-body cut. */
const BYTE_COUNT_FAULTS: ReadonlySet<FaultKind> = new Set([...BODY_FAULTS, 'cut-request-after']);

/**
 * Routes whose error union can carry `too_many_write_operations` (Dropbox's namespace lock
 * contention): at the top of DeleteError and UploadSessionFinishError, and as a WriteError
 * inside UploadError, CreateFolderError and RelocationError. The 409 fault of that name
 * matches only these routes.
 */
export const WRITE_CONTENTION_ROUTES: ReadonlySet<string> = new Set([
  'files/upload',
  'files/upload_session/finish',
  'files/create_folder_v2',
  'files/delete_v2',
  'files/move_v2',
  'files/copy_v2',
]);

/** What a route does with bodies, which decides the faults that can match it. */
export interface RouteTraits {
  /** The route sends a file body (download style), which cut-after and change-after need. */
  sendsFileBody: boolean;
  /** The route reads a request body (RPC, upload and token calls), which cut-request-after needs. */
  readsRequestBody: boolean;
}

/** One rule in the JSON form that the control endpoint takes and returns. */
export interface FaultRule {
  /** Route name as in the URL after /2/ (e.g. 'files/download'), 'oauth2/token', or '*'. */
  route: string;
  fault: FaultKind;
  /** Number of matching calls the rule applies to; absent means until cleared. */
  times?: number;
  /** For '429': the Retry-After header and `retry_after` field, in seconds; default 1. */
  retryAfterSeconds?: number;
  /** For '429': the RateLimitReason tag; default 'too_many_requests'. */
  reason?: RateLimitReason;
  /**
   * For 'cut-after' and 'change-after': response body bytes sent before the fault acts. For
   * 'cut-request-after': request body bytes read before the connection is destroyed. A route
   * that rejects the request before reading its body responds as usual, and nothing is cut.
   */
  bytes?: number;
  /** For 'change-after': the file's new content as UTF-8; default: every byte inverted. */
  content?: string;
}

/** A rule in the table, with its id and how many more calls it applies to (null: no limit). */
export interface ActiveFaultRule extends FaultRule {
  id: number;
  remaining: number | null;
}

/** An invalid fault rule; the message names the field and the accepted values. */
export class InvalidFaultRuleError extends Error {
  override readonly name = 'InvalidFaultRuleError';
}

const RULE_FIELDS = new Set(['route', 'fault', 'times', 'retryAfterSeconds', 'reason', 'bytes', 'content']);

/** Checks a JSON rule and returns a copy; throws InvalidFaultRuleError naming the bad field. */
export function validateFaultRule(value: unknown): FaultRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidFaultRuleError('a fault rule must be a JSON object such as {"route":"*","fault":"503"}');
  }
  const input = value as Record<string, unknown>;
  for (const field of Object.keys(input)) {
    if (!RULE_FIELDS.has(field)) {
      throw new InvalidFaultRuleError(`unknown field "${field}"; known fields: ${[...RULE_FIELDS].join(', ')}`);
    }
  }
  const route = input.route;
  if (typeof route !== 'string' || route === '' || route.startsWith('/')) {
    throw new InvalidFaultRuleError('"route" must be a route name such as "files/download", or "*"');
  }
  const fault = input.fault;
  if (!FAULT_KINDS.includes(fault as FaultKind)) {
    throw new InvalidFaultRuleError(`"fault" must be one of ${FAULT_KINDS.join(', ')}`);
  }
  const rule: FaultRule = { route, fault: fault as FaultKind };
  copyCount(input, rule, 'times', 1);
  copyCount(input, rule, 'retryAfterSeconds', 0);
  copyCount(input, rule, 'bytes', 0);
  if (input.reason !== undefined) {
    if (!RATE_LIMIT_REASONS.includes(input.reason as RateLimitReason)) {
      throw new InvalidFaultRuleError(`"reason" must be one of ${RATE_LIMIT_REASONS.join(', ')}`);
    }
    rule.reason = input.reason as RateLimitReason;
  }
  if (input.content !== undefined) {
    if (typeof input.content !== 'string') {
      throw new InvalidFaultRuleError('"content" must be a string, the new file content as UTF-8');
    }
    rule.content = input.content;
  }
  checkFieldsFitFault(rule);
  return rule;
}

function copyCount(
  input: Record<string, unknown>,
  rule: FaultRule,
  field: 'times' | 'retryAfterSeconds' | 'bytes',
  min: number,
): void {
  const value = input[field];
  if (value === undefined) {
    return;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidFaultRuleError(`"${field}" must be a whole number of at least ${min}, got ${JSON.stringify(value)}`);
  }
  rule[field] = value;
}

function checkFieldsFitFault(rule: FaultRule): void {
  const needsBytes = BYTE_COUNT_FAULTS.has(rule.fault);
  if (needsBytes && rule.bytes === undefined) {
    throw new InvalidFaultRuleError(`fault "${rule.fault}" needs "bytes", the body bytes to pass first`);
  }
  if (!needsBytes && rule.bytes !== undefined) {
    throw new InvalidFaultRuleError(
      `"bytes" applies only to cut-after, change-after and cut-request-after, not ${rule.fault}`,
    );
  }
  if (rule.fault === 'too-many-write-operations' && rule.route !== '*' && !WRITE_CONTENTION_ROUTES.has(rule.route)) {
    throw new InvalidFaultRuleError(
      `fault "too-many-write-operations" needs a route whose errors carry it: ${[...WRITE_CONTENTION_ROUTES].join(', ')} or *`,
    );
  }
  if (rule.fault !== '429' && (rule.retryAfterSeconds !== undefined || rule.reason !== undefined)) {
    throw new InvalidFaultRuleError(`"retryAfterSeconds" and "reason" apply only to fault 429, not ${rule.fault}`);
  }
  if (rule.fault !== 'change-after' && rule.content !== undefined) {
    throw new InvalidFaultRuleError(`"content" applies only to change-after, not ${rule.fault}`);
  }
}

// Text-form option names and the JSON field each one sets.
const TEXT_OPTIONS: Record<string, keyof FaultRule> = {
  times: 'times',
  'retry-after': 'retryAfterSeconds',
  reason: 'reason',
  content: 'content',
};

/** Describes the text form for --help and error messages. */
export const FAULT_RULE_SYNTAX =
  'ROUTE:FAULT[,OPTION=VALUE...] where ROUTE is a route name such as files/download, ' +
  'oauth2/token, or * for every /2/ route; FAULT is 429, 500, 503, expired-token, black-hole, ' +
  'reset, too-many-write-operations, cut-after=BYTES, change-after=BYTES or ' +
  'cut-request-after=BYTES; OPTION is times=N, retry-after=SECONDS, ' +
  'reason=too_many_requests|too_many_write_operations, or content=TEXT (for change-after)';

/**
 * Parses the text form, e.g. `files/download:cut-after=1048576,times=1` or
 * `*:429,retry-after=2,reason=too_many_write_operations`. Throws InvalidFaultRuleError.
 */
export function parseFaultRule(text: string): FaultRule {
  // Route names never contain ':', so the first one ends the route.
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new InvalidFaultRuleError(`expected ${FAULT_RULE_SYNTAX}`);
  }
  const [faultPart = '', ...optionParts] = text.slice(colon + 1).split(',');
  const rule: Record<string, unknown> = { route: text.slice(0, colon) };
  const [fault, faultValue] = splitOption(faultPart);
  rule.fault = fault;
  if (faultValue !== undefined) {
    rule.bytes = parseWholeNumber(fault, faultValue);
  }
  for (const part of optionParts) {
    const [name, value] = splitOption(part);
    const field = TEXT_OPTIONS[name];
    if (field === undefined || value === undefined) {
      throw new InvalidFaultRuleError(`unknown option "${part}"; expected ${FAULT_RULE_SYNTAX}`);
    }
    rule[field] = field === 'reason' || field === 'content' ? value : parseWholeNumber(name, value);
  }
  return validateFaultRule(rule);
}

function splitOption(part: string): [string, string | undefined] {
  const equals = part.indexOf('=');
  return equals === -1 ? [part, undefined] : [part.slice(0, equals), part.slice(equals + 1)];
}

function parseWholeNumber(name: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new InvalidFaultRuleError(`"${name}" must be a whole number, got "${value}"`);
  }
  return Number(value);
}

/** The rules of one emulator, in the order added. */
export class FaultTable {
  private rules: ActiveFaultRule[] = [];
  private nextId = 1;

  add(rule: FaultRule): ActiveFaultRule {
    const active: ActiveFaultRule = { ...rule, id: this.nextId++, remaining: rule.times ?? null };
    this.rules.push(active);
    return { ...active };
  }

  list(): ActiveFaultRule[] {
    return this.rules.map((rule) => ({ ...rule }));
  }

  clear(): void {
    this.rules = [];
  }

  /**
   * Returns the first rule that matches a call to `route` and counts the call against it,
   * dropping the rule once its count is used up. `traits` decide which body faults can match.
   * Costs one length check when empty.
   */
  take(route: string, traits: RouteTraits): FaultRule | undefined {
    if (this.rules.length === 0) {
      return undefined;
    }
    const index = this.rules.findIndex((rule) => matches(rule, route, traits));
    const rule = this.rules[index];
    if (rule === undefined) {
      return undefined;
    }
    if (rule.remaining !== null) {
      rule.remaining -= 1;
      if (rule.remaining === 0) {
        this.rules.splice(index, 1);
      }
    }
    return rule;
  }
}

function matches(rule: FaultRule, route: string, traits: RouteTraits): boolean {
  // '*' means every Dropbox API route, so a blanket rule does not also block token refresh.
  const routeMatches = rule.route === route || (rule.route === '*' && route !== 'oauth2/token');
  if (!routeMatches) {
    return false;
  }
  if (BODY_FAULTS.has(rule.fault)) {
    return traits.sendsFileBody;
  }
  if (rule.fault === 'cut-request-after') {
    return traits.readsRequestBody;
  }
  if (rule.fault === 'too-many-write-operations') {
    return WRITE_CONTENTION_ROUTES.has(route);
  }
  return true;
}
