import type { ServerFrame } from '@herald/protocol';

const serialized = new WeakMap<ServerFrame, string>();

/**
 * A frame's JSON, made once per frame object: a notification sent to thousands of connections (a broadcast,
 * a topic) is one object, serialised once, whatever the number of sockets. Frames are never changed after
 * they are first sent.
 */
export function frameText(frame: ServerFrame): string {
  let text = serialized.get(frame);
  if (text === undefined) {
    text = JSON.stringify(frame);
    serialized.set(frame, text);
  }
  return text;
}

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
