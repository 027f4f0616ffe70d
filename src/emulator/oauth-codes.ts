/**
 * Authorization codes issued by the emulator's /oauth2/authorize page, redeemed once at
 * /oauth2/token with grant_type=authorization_code. PKCE: a code issued with a
 * `code_challenge` (S256: base64url of SHA-256 of the verifier, without padding) is redeemed
 * only with the matching `code_verifier`.
 */

import { createHash, randomBytes } from 'node:crypto';

export interface AuthorizationCode {
  clientId: string;
  redirectUri: string | null;
  codeChallenge: string | null;
  expiresAtMs: number;
}

// Dropbox does not document a code lifetime; ten minutes is the usual OAuth choice.
const CODE_TTL_MS = 10 * 60 * 1000;

export class AuthorizationCodes {
  private readonly codes = new Map<string, AuthorizationCode>();

  constructor(private readonly now: () => number) {}

  issue(clientId: string, redirectUri: string | null, codeChallenge: string | null): string {
    const code = randomBytes(32).toString('base64url');
    this.codes.set(code, { clientId, redirectUri, codeChallenge, expiresAtMs: this.now() + CODE_TTL_MS });
    return code;
  }

  /** Removes and returns the code's grant; undefined when it is unknown or expired. */
  redeem(code: string): AuthorizationCode | undefined {
    const grant = this.codes.get(code);
    this.codes.delete(code);
    return grant !== undefined && grant.expiresAtMs > this.now() ? grant : undefined;
  }
}

/** Returns the S256 code challenge of a PKCE verifier. */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
