import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';

const ANSWERS: Record<string, { status: number; text: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    text: 'Request Header Fields Too Large',
    message: 'request headers are too large (16 KiB at most)',
  },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, text: 'Request Timeout', message: 'the request took too long to arrive' },
};

/**
 * Fastify's `clientErrorHandler`: requests Node refuses before any route runs (headers over its limit,
 * malformed HTTP, too slow) get the service's JSON error body too, instead of a bare status line.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this socket (a stream) must not get an answer spliced into it.
  const inProgress = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || error.code === 'ECONNRESET' || inProgress?.headersSent) {
    socket.destroy();
    return;
  }
  const answer = ANSWERS[error.code ?? ''] ?? { status: 400, text: 'Bad Request', message: 'malformed HTTP request' };
  const body = JSON.stringify({
    error: { code: 'BAD_REQUEST', message: answer.message, requestId: randomUUID() },
  });
  socket.end(
    `HTTP/1.1 ${answer.status} ${answer.text}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
