import type { IncomingMessage } from 'node:http';

/** The credential of `Authorization: Bearer <credential>`, or null when the header is absent or malformed. */
export function bearerOf(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
}
