import type { IncomingMessage } from 'node:http';

/** The credential of `Authorization: Bearer <credential>`, or null when the header is absent or malformed. */
export function bearerOf(request: Pick<IncomingMessage, 'headers'>): string | null {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
}

/** The protection spaces of RFC 6750: API keys, user tokens and admin sessions; the admin password. */
export const Realm = { Herald: 'herald', AdminLogin: 'herald-admin' } as const;
export type Realm = (typeof Realm)[keyof typeof Realm];

/**
 * What a 401 asks for (RFC 6750 §3). `invalidToken`: a credential was sent and is wrong
 * (`error="invalid_token"`); without it, none was sent, and the challenge names no error.
 */
export interface BearerChallenge {
  realm: Realm;
  invalidToken?: boolean;
}

/** The `WWW-Authenticate` value of a challenge: `Bearer realm="herald", error="invalid_token"`. */
export function wwwAuthenticate(challenge: BearerChallenge): string {
  return `Bearer realm="${challenge.realm}"${challenge.invalidToken ? ', error="invalid_token"' : ''}`;
}
