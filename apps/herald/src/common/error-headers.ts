import { ErrorCode } from '@herald/protocol';
import { Realm, wwwAuthenticate } from './bearer';
import { HeraldError, RateLimitedError, UnauthorizedError, UnavailableError, UpgradeRequiredError } from './errors';

/**
 * The headers an error answer carries: `Retry-After` where a retry is welcome (with the RateLimit fields of
 * a publisher's refusal), `WWW-Authenticate` on
 * every 401 (RFC 6750 §3; `Bearer realm="herald"` when the error names no challenge), and `Upgrade` with
 * the WebSocket version on a 426 (RFC 6455 §4.2.2; `Connection: Upgrade` with it, as RFC 9110 §7.8 asks).
 */
export function errorHeaders(error: unknown, status: number): Record<string, string> {
  const headers: Record<string, string> = {};
  if (error instanceof UnavailableError) headers['Retry-After'] = String(error.retryAfterSeconds);
  else if (error instanceof HeraldError && error.code === ErrorCode.Unavailable) headers['Retry-After'] = '1';
  if (error instanceof RateLimitedError) {
    headers['Retry-After'] = String(error.retryAfterSeconds);
    if (error.fields) {
      headers['RateLimit-Policy'] = error.fields.policy;
      headers.RateLimit = error.fields.current;
    }
  }
  if (status === 401) {
    const challenge = error instanceof UnauthorizedError ? error.challenge : { realm: Realm.Herald };
    headers['WWW-Authenticate'] = wwwAuthenticate(challenge);
  }
  if (error instanceof UpgradeRequiredError) {
    headers.Upgrade = 'websocket';
    headers.Connection = 'Upgrade';
    headers['Sec-WebSocket-Version'] = '13';
  }
  return headers;
}
