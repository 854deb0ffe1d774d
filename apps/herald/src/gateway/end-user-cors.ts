import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpgradeAuthService } from '../auth/upgrade-auth.service';

/** The end-user REST paths a browser app on another origin calls (tickets, the SSE fallback and its acks, the inbox). */
const END_USER_PATHS = ['/v1/tickets', '/v1/stream', '/v1/acks', '/v1/me'];

/** Whether a path (lower case, no trailing slash) is one of the end-user paths, or under one. */
export function isEndUserPath(path: string): boolean {
  return END_USER_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/**
 * CORS for the end-user paths, by the WebSocket's own Origin allowlist: an
 * app allowed to open /ws from its origin may fall back to SSE from it too.
 * The token travels in `Authorization`, never in cookies, so no credentials
 * mode is granted. A preflight from any other origin gets no CORS headers,
 * and the request itself is refused with 403 by the token guard. The headers go on the Node response, so
 * every answer carries them, streams included; a preflight is for the caller to answer (204).
 */
export function endUserCors(
  auth: UpgradeAuthService,
): (request: IncomingMessage, response: ServerResponse) => 'preflight' | undefined {
  return (request, response) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !auth.originAllowed(origin)) return undefined;
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Vary', 'Origin');
    response.setHeader(
      'Access-Control-Expose-Headers',
      'X-Request-Id, X-Herald-Replica, Retry-After, WWW-Authenticate',
    );
    if (request.method !== 'OPTIONS') return undefined;
    response.setHeader('Access-Control-Allow-Methods', 'GET, POST');
    response.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Last-Event-ID');
    response.setHeader('Access-Control-Max-Age', '600');
    return 'preflight';
  };
}
