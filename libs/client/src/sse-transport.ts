import type { ServerFrame, StreamCloseEvent } from '@herald/protocol';
import { AckPoster, type AckOutbox } from './acks.js';
import { errorMessageOf, messageOf, parseJson } from './http.js';
import { SseParser } from './sse.js';
import { ABNORMAL, type Dialer, refusalCode, type Transport, type TransportSink } from './transport.js';
import type { ClientEvents } from './types.js';

export interface SseDialerOptions {
  fetch: typeof fetch | undefined;
  streamUrl: string;
  acksUrl: string;
  acks: AckOutbox;
  /** The client is open on SSE now (acks are posted only then). */
  open(): boolean;
  /** The client's token now, for the acks and heartbeat answers. */
  token(): string | undefined;
  tokenRefused(): void;
  error(event: ClientEvents['error']): void;
}

/** Opens event streams for one client: the fallback where WebSockets are blocked; the client only listens. */
export class SseDialer implements Dialer {
  readonly kind = 'sse';
  readonly duplex = false;
  readonly pongUrl: string;
  /** Acks go by POST, one batch at a time for the whole client (not per stream). */
  readonly poster: AckPoster;
  /** The last event id seen, sent as `Last-Event-ID` so the next stream resumes after it. */
  lastEventId: string | undefined;

  constructor(readonly options: SseDialerOptions) {
    this.pongUrl = options.streamUrl.replace(/\/?(\?.*)?$/, '/pong');
    this.poster = new AckPoster(options.acks, options);
  }

  create(sink: TransportSink): Transport {
    return new SseTransport(this, sink);
  }
}

/** One event stream over `fetch`: events in, heartbeats answered by POST, acks posted. */
class SseTransport implements Transport {
  /** Only WebSocket upgrades count towards the fallback. */
  readonly attempted = false;
  /** Nothing is written on a stream: no frames, no closing handshake. */
  readonly writable = false;
  private controller: AbortController | null = null;
  /** From this stream's welcome: heartbeat answers name it. */
  private connectionId: string | undefined;

  constructor(
    private readonly dialer: SseDialer,
    private readonly sink: TransportSink,
  ) {}

  open(token: string): void {
    void this.stream(token);
  }

  send(): boolean {
    return false;
  }

  sendAcks(): void {
    void this.dialer.poster.post();
  }

  sendLastAcks(): void {
    this.dialer.poster.postLast();
  }

  close(): boolean {
    return false;
  }

  drop(): void {
    this.controller?.abort();
    this.controller = null;
  }

  private async stream(token: string): Promise<void> {
    const { dialer, sink } = this;
    const { options } = dialer;
    if (!options.fetch) {
      sink.fatal(1002, 'no fetch for the SSE fallback: pass options.fetch');
      return;
    }
    const controller = new AbortController();
    this.controller = controller;
    const headers: Record<string, string> = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
    if (dialer.lastEventId !== undefined) headers['Last-Event-ID'] = dialer.lastEventId;
    let closeEvent: StreamCloseEvent | undefined;
    try {
      const response = await options.fetch(options.streamUrl, { headers, signal: controller.signal });
      if (!response.ok || !response.body) {
        const message = await errorMessageOf(response);
        sink.closed(refusalCode(response.status), `stream refused (${response.status}): ${message}`);
        return;
      }
      const parser = new SseParser(
        (event) => {
          if (!sink.current()) return;
          if (event.event === 'close') {
            closeEvent = parseJson<StreamCloseEvent>(event.data);
            return;
          }
          if (event.id !== undefined) dialer.lastEventId = event.id;
          const frame = parseJson<ServerFrame>(event.data);
          if (!frame) {
            sink.error({ message: 'the server sent an event that is not JSON' });
            return;
          }
          if (frame.type === 'welcome') this.connectionId = frame.connectionId;
          sink.frame(frame);
        },
        () => {
          if (!sink.current()) return;
          sink.heard();
          void this.answerHeartbeat();
        },
      );
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !sink.current()) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      if (sink.current() && !controller.signal.aborted) {
        sink.closed(ABNORMAL, `stream failed: ${messageOf(error)}`);
        return;
      }
    }
    sink.closed(closeEvent?.code ?? ABNORMAL, closeEvent?.reason ?? 'stream ended');
  }

  /**
   * Answers an SSE heartbeat (`POST /v1/stream/pong`), so the server can tell
   * a live stream from one whose client vanished. Driven by the server's
   * heartbeat arriving, not by a timer, so a throttled background tab answers
   * in time. A 404 means no replica holds the stream any more.
   */
  private async answerHeartbeat(): Promise<void> {
    const { options, pongUrl } = this.dialer;
    const connectionId = this.connectionId;
    if (!options.fetch || connectionId === undefined) return;
    try {
      const response = await options.fetch(pongUrl, {
        method: 'POST',
        headers: { Authorization: `Bearer ${options.token() ?? ''}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ connectionId }),
      });
      if (response.status === 404) this.sink.closed(ABNORMAL, 'the server no longer holds this stream');
    } catch {
      // The next heartbeat tries again; a stream that is really gone ends by itself.
    }
  }
}
