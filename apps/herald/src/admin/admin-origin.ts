import type { NextFunction, Request, Response } from 'express';
import { ForbiddenError } from '../common/errors';
import { toErrorResponse } from '../common/http-error.filter';
import { requestIdOf } from '../common/request-id';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery guard of the admin API. Sessions travel in
 * `Authorization`, which a browser never attaches by itself, so a forged
 * request cannot carry one; this is the second lock. A state-changing request
 * (the login included) that a browser marks as coming from another site is
 * refused with 403: its `Origin` must be the console's own (the `Host` it was
 * sent to) or one of HERALD_ALLOWED_ORIGINS, and without `Origin`,
 * `Sec-Fetch-Site` must not say `cross-site`. Clients that are not browsers
 * send neither header and are let through to the session check.
 */
export function adminOriginCheck(allowedOrigins: string[]) {
  const allowed = new Set(allowedOrigins.filter((o) => o !== '*').map((o) => o.toLowerCase()));
  return (request: Request, response: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(request.method)) return next();
    const origin = request.headers.origin;
    const refusal = typeof origin === 'string' ? originRefusal(origin, request, allowed) : fetchSiteRefusal(request);
    if (!refusal) return next();
    const { status, body } = toErrorResponse(new ForbiddenError(refusal), requestIdOf(request));
    response.status(status).json(body);
  };
}

function originRefusal(origin: string, request: Request, allowed: Set<string>): string | null {
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

function fetchSiteRefusal(request: Request): string | null {
  return request.headers['sec-fetch-site'] === 'cross-site' ? 'cross-site request refused (Sec-Fetch-Site)' : null;
}
