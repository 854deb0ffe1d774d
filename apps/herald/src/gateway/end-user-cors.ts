import type { NextFunction, Request, Response } from 'express';
import type { UpgradeAuthService } from '../auth/upgrade-auth.service';

/** The end-user REST paths a browser app on another origin calls (tickets, the SSE fallback and its acks). */
export const END_USER_PATHS = ['/v1/tickets', '/v1/stream', '/v1/stream/pong', '/v1/acks'];

/**
 * CORS for the end-user paths, by the WebSocket's own Origin allowlist: an
 * app allowed to open /ws from its origin may fall back to SSE from it too.
 * The token travels in `Authorization`, never in cookies, so no credentials
 * mode is granted. A preflight from any other origin gets no CORS headers,
 * and the request itself is refused with 403 by the token guard.
 */
export function endUserCors(auth: UpgradeAuthService) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !auth.originAllowed(origin)) return next();
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.vary('Origin');
    response.setHeader(
      'Access-Control-Expose-Headers',
      'X-Request-Id, X-Herald-Replica, Retry-After, WWW-Authenticate',
    );
    if (request.method !== 'OPTIONS') return next();
    response.setHeader('Access-Control-Allow-Methods', 'GET, POST');
    response.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Last-Event-ID');
    response.setHeader('Access-Control-Max-Age', '600');
    response.status(204).end();
  };
}
