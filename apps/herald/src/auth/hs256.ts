import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Why `verifyHs256` refused a token. */
export type Hs256Refusal = 'invalid' | 'expired' | 'not-yet-valid';

export type Hs256Result = { ok: true; claims: Record<string, unknown> } | { ok: false; refusal: Hs256Refusal };

/** Three base64url segments; the signature's may not be empty (that is `alg: none`). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Verifies a compact JWT signed with HS256 and its time claims, as `jsonwebtoken.verify` with
 * `algorithms: ['HS256']` and `clockTolerance` does, in one pass: the header must name HS256 (every other
 * algorithm, `none` included, is refused before the signature is looked at), the signature is compared in
 * constant time, the payload must be a JSON object, `exp` and `nbf` must be numbers when present;
 * expired at `now >= exp + tolerance`, not yet valid at `nbf > now + tolerance`. In one pass because the
 * token is checked at every connect (ADR 0018; measured in docs/performance.md, section 16); the test
 * suite checks it agrees with jsonwebtoken on valid, tampered and malformed tokens.
 */
export function verifyHs256(token: string, key: KeyObject, nowSeconds: number, toleranceSeconds: number): Hs256Result {
  if (!COMPACT_JWS.test(token)) return { ok: false, refusal: 'invalid' };
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  const header = parseObject(token.slice(0, firstDot));
  if (!header || header.alg !== 'HS256') return { ok: false, refusal: 'invalid' };
  // Compared as text, as jws does: a signature is its one canonical base64url spelling.
  const expected = Buffer.from(createHmac('sha256', key).update(token.slice(0, lastDot)).digest('base64url'));
  const given = Buffer.from(token.slice(lastDot + 1));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, refusal: 'invalid' };
  const claims = parseObject(token.slice(firstDot + 1, lastDot));
  if (!claims) return { ok: false, refusal: 'invalid' };
  for (const name of ['exp', 'nbf']) {
    if (claims[name] !== undefined && typeof claims[name] !== 'number') return { ok: false, refusal: 'invalid' };
  }
  if (typeof claims.nbf === 'number' && claims.nbf > nowSeconds + toleranceSeconds) {
    return { ok: false, refusal: 'not-yet-valid' };
  }
  if (typeof claims.exp === 'number' && nowSeconds >= claims.exp + toleranceSeconds) {
    return { ok: false, refusal: 'expired' };
  }
  return { ok: true, claims };
}

/** A base64url segment holding a JSON object, or null. */
function parseObject(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
