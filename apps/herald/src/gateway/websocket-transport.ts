import type { ServerFrame } from '@herald/protocol';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { ClientTransport, frameText } from '../connections/transport';

/** Sockets written to in this tick, corked until it ends (see `corkForThisTick`). */
let corked = new Set<Socket>();

function uncorkAll(): void {
  const sockets = corked;
  corked = new Set();
  for (const socket of sockets) socket.uncork();
}

/**
 * Frames sent to one socket in the same tick leave in one write (`writev`), not one system call each:
 * a replay batch of hundreds of notifications, or the answers to a batch of acks, is one write. One
 * `process.nextTick` for every socket written to in the tick, no state kept per socket. The bytes
 * count in `bufferedAmount` while corked, so the send-buffer cap sees them.
 */
function corkForThisTick(socket: Socket): void {
  if (corked.has(socket)) return;
  if (corked.size === 0) process.nextTick(uncorkAll);
  socket.cork();
  corked.add(socket);
}

/** A `ws` socket as a client transport: JSON text frames, WebSocket pings. */
export class WebSocketTransport implements ClientTransport {
  readonly kind = 'websocket';
  readonly answersPings = true;

  /** `stream`: the TCP socket under `socket` (the upgrade request's). */
  constructor(
    private readonly socket: WebSocket,
    private readonly stream: Socket,
  ) {}

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(frame: ServerFrame): void {
    if (this.socket.readyState === this.socket.OPEN) corkForThisTick(this.stream);
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
