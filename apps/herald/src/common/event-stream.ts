import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';

/**
 * Turns a reply into a `text/event-stream` on its Node response, which it returns: Fastify lets go of the
 * reply (hijack), the headers are sent at once, nothing is cached or buffered by proxies (Nginx honours
 * X-Accel-Buffering), and the EventSource reconnect delay is set.
 */
export function openEventStream(reply: FastifyReply, retryMs: number): ServerResponse {
  reply.hijack();
  const response = reply.raw;
  response.statusCode = 200;
  response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  response.setHeader('Cache-Control', 'no-store');
  response.setHeader('X-Accel-Buffering', 'no');
  response.socket?.setNoDelay(true);
  response.flushHeaders();
  response.write(`retry: ${retryMs}\n\n`);
  return response;
}
