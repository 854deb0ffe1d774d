import type { ServerFrame, StreamCloseEvent } from '@herald/protocol';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { openEventStream } from '../common/event-stream';
import { ClientTransport, frameText } from '../connections/transport';

/**
 * An open `text/event-stream` response as a client transport. Each server
 * frame is one event named after its `type`; notifications carry `id:` =
 * their seq, so a client resumes with `Last-Event-ID`. Heartbeats are comment
 * lines, and the server's reason for ending the stream is a `close` event.
 */
export class SseTransport implements ClientTransport {
  readonly kind = 'sse';
  readonly answersPings = false;
  /** The close code the server ended the stream with; unset when the client went away. */
  closeCode: number | undefined;

  readonly response: ServerResponse;

  constructor(reply: FastifyReply) {
    // retry: how soon EventSource comes back if the stream drops; the SDK keeps its own backoff.
    this.response = openEventStream(reply, 1000);
  }

  get isOpen(): boolean {
    return !this.response.writableEnded && !this.response.destroyed;
  }

  get bufferedAmount(): number {
    // OutgoingMessage.writableLength already counts what its socket has not written yet.
    return this.response.writableLength;
  }

  send(frame: ServerFrame): void {
    if (!this.isOpen) return;
    const id = frame.type === 'notification' ? `id: ${frame.seq}\n` : '';
    // JSON.stringify escapes line breaks inside strings, so the data is one line.
    this.response.write(`${id}event: ${frame.type}\ndata: ${frameText(frame)}\n\n`);
  }

  ping(): void {
    if (this.isOpen) this.response.write(': ping\n\n');
  }

  close(code: number, reason: string): void {
    if (!this.isOpen) return;
    this.closeCode = code;
    const event: StreamCloseEvent = { code, reason };
    this.response.end(`event: close\ndata: ${JSON.stringify(event)}\n\n`);
  }

  terminate(): void {
    this.response.destroy();
  }
}
