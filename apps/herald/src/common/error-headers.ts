import { ErrorCode } from '@herald/protocol';
import { Realm, wwwAuthenticate } from './bearer';
import { HeraldError, RateLimitedError, UnauthorizedError } from './errors';

/**
 * The headers an error answer carries: `Retry-After` where a retry is welcome, and `WWW-Authenticate` on
 * every 401 (RFC 6750 §3; `Bearer realm="herald"` when the error names no challenge).
 */
export function errorHeaders(error: unknown, status: number): Record<string, string> {
  const headers: Record<string, string> = {};
  if (error instanceof HeraldError && error.code === ErrorCode.Unavailable) headers['Retry-After'] = '1';
  if (error instanceof RateLimitedError) headers['Retry-After'] = String(error.retryAfterSeconds);
  if (status === 401) {
    const challenge = error instanceof UnauthorizedError ? error.challenge : { realm: Realm.Herald };
    headers['WWW-Authenticate'] = wwwAuthenticate(challenge);
  }
  return headers;
}
