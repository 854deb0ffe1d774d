import type { ServerFrame } from '@herald/protocol';

/**
 * A frame's JSON, kept on the frame object itself: under a symbol key (JSON.stringify never sees it) and
 * not enumerable (a copy of the frame made with spread does not carry it along).
 */
const TEXT = Symbol('frameText');
type WithText = ServerFrame & { [TEXT]?: string };

function keep(frame: ServerFrame, text: string): void {
  Object.defineProperty(frame, TEXT, { value: text, enumerable: false });
}

/**
 * A frame's JSON, made once per frame object: a notification sent to thousands of connections (a broadcast,
 * a topic) is one object, serialised once, whatever the number of sockets. Frames are never changed after
 * they are first sent. (A property, not a WeakMap entry: cheaper, and no weak table for the GC to sweep.)
 */
export function frameText(frame: ServerFrame): string {
  let text = (frame as WithText)[TEXT];
  if (text === undefined) {
    text = JSON.stringify(frame);
    keep(frame, text);
  }
  return text;
}

/** Gives a frame its JSON, made by the caller (equal to the frame's own, as JSON). */
export function withFrameText<F extends ServerFrame>(frame: F, text: string): F {
  keep(frame, text);
  return frame;
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
