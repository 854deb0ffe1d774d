import type { ServerFrame } from '@herald/protocol';
import type { WebSocket } from 'ws';
import { ClientTransport, frameText } from '../delivery/transport';

/** A `ws` socket as a client transport: JSON text frames, WebSocket pings. */
export class WebSocketTransport implements ClientTransport {
  readonly kind = 'websocket';
  readonly answersPings = true;

  constructor(private readonly socket: WebSocket) {}

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(frame: ServerFrame): void {
    this.socket.send(frameText(frame));
  }

  ping(): void {
    this.socket.ping();
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }

  terminate(): void {
    this.socket.terminate();
  }
}
