import type { Response } from 'express';

/**
 * Turns a response into a `text/event-stream`: headers sent at once, nothing
 * cached or buffered by proxies (Nginx honours X-Accel-Buffering), and the
 * EventSource reconnect delay.
 */
export function openEventStream(response: Response, retryMs: number): void {
  response.status(200);
  response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  response.setHeader('Cache-Control', 'no-store');
  response.setHeader('X-Accel-Buffering', 'no');
  response.socket?.setNoDelay(true);
  response.flushHeaders();
  response.write(`retry: ${retryMs}\n\n`);
}
