import type { ServerFrame } from '@herald/protocol';

/**
 * How frames reach one client: a WebSocket, or a Server-Sent Events response
 * for networks that block WebSockets. The delivery code sees only this.
 */
export interface ClientTransport {
  readonly kind: 'websocket' | 'sse';
  readonly isOpen: boolean;
  /** Bytes accepted but not yet written to the network. */
  readonly bufferedAmount: number;
  /** True when `ping()` is answered (a WebSocket pong); an SSE stream has no way back. */
  readonly answersPings: boolean;
  send(frame: ServerFrame): void;
  ping(): void;
  /** Ends the stream, telling the client why with a WebSocket close code. */
  close(code: number, reason: string): void;
  /** Ends it at once, without a goodbye. */
  terminate(): void;
}
