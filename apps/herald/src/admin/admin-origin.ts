import type { IncomingMessage } from 'node:http';
import { ForbiddenError } from '../common/errors';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery guard of the admin API. Sessions travel in
 * `Authorization`, which a browser never attaches by itself, so a forged
 * request cannot carry one; this is the second lock. A state-changing request
 * (the login included) that a browser marks as coming from another site is
 * refused with 403: its `Origin` must be the console's own (the `Host` it was
 * sent to) or one of HERALD_ALLOWED_ORIGINS, and without `Origin`,
 * `Sec-Fetch-Site` must not say `cross-site`. Clients that are not browsers
 * send neither header and are let through to the session check. Throws the refusal.
 */
export function adminOriginCheck(allowedOrigins: string[]): (request: IncomingMessage) => void {
  const allowed = new Set(allowedOrigins.filter((o) => o !== '*').map((o) => o.toLowerCase()));
  return (request) => {
    if (SAFE_METHODS.has(request.method ?? 'GET')) return;
    const origin = request.headers.origin;
    const refusal = typeof origin === 'string' ? originRefusal(origin, request, allowed) : fetchSiteRefusal(request);
    if (refusal) throw new ForbiddenError(refusal);
  };
}

function originRefusal(origin: string, request: IncomingMessage, allowed: Set<string>): string | null {
  if (allowed.has(origin.toLowerCase())) return null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return 'cross-site request refused: the Origin header is not a valid origin';
  }
  if (host !== '' && host === String(request.headers.host ?? '').toLowerCase()) return null;
  return `cross-site request refused: Origin ${origin.slice(0, 200)} is neither this console's origin nor allowed`;
}

function fetchSiteRefusal(request: IncomingMessage): string | null {
  return request.headers['sec-fetch-site'] === 'cross-site' ? 'cross-site request refused (Sec-Fetch-Site)' : null;
}
