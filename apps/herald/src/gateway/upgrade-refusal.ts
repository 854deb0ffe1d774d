import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeraldError } from '../common/errors';
import { errorHeaders } from '../common/error-headers';
import { toErrorResponse } from '../common/http-error.filter';
import { requestIdFrom } from '../common/request-id';

/** An HTTP answer to an upgrade request that does not become a WebSocket: the REST API's error body and headers. */
export interface UpgradeRefusal {
  status: number;
  /** The JSON error body, serialized. */
  body: string;
  headers: Record<string, string>;
}

/**
 * The refusal of an upgrade request, built by the same mapping as every REST error (status, body,
 * `Retry-After`, `WWW-Authenticate`, `Upgrade`), with the request id and the replica as on any response.
 */
export function upgradeRefusal(error: HeraldError, request: IncomingMessage, replicaId: string): UpgradeRefusal {
  const requestId = requestIdFrom(request);
  const { status, body } = toErrorResponse(error, requestId);
  return {
    status,
    body: JSON.stringify(body),
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'X-Request-Id': requestId,
      'X-Herald-Replica': replicaId,
      ...errorHeaders(error, status),
    },
  };
}

/**
 * Writes a refusal on the socket of an upgrade request and closes it, as `ws` closes its own refusals.
 * Node hands such a socket over without an `error` listener: one is added, so a reset cannot throw.
 */
export function writeUpgradeRefusal(socket: Duplex, refusal: UpgradeRefusal): void {
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const headers: Record<string, string> = {
    ...refusal.headers,
    'Content-Length': String(Buffer.byteLength(refusal.body)),
    // `Upgrade` on a 426 names the upgrade option too; either way this connection ends here.
    Connection: refusal.headers.Connection ? `${refusal.headers.Connection}, close` : 'close',
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n${lines.join('')}\r\n${refusal.body}`);
}
