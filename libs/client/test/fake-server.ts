/**
 * The unit specs' server: a scripted WebSocket (the spec plays the server through it), and the few helpers
 * every client spec builds on. Under test/ so that the package (src/) never ships it.
 */
import type { NotificationFrame, ProtocolFeature, ServerFrame } from '@herald/protocol';
import { HeraldClient, type HeraldClientOptions } from '../src/client.js';

/** A scripted WebSocket: the test plays the server. */
export class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {
    FakeSocket.all.push(this);
  }

  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1]!;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    // Like `ws`: closing a socket that is still connecting emits 'error', which must have a listener.
    if (this.readyState === 0 && typeof this.onerror !== 'function') {
      throw new Error('closed while connecting with no error listener: ws would crash the process');
    }
    this.serverClose(code ?? 1005, reason ?? '');
  }

  /** The upgrade succeeds; no `welcome` yet. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The upgrade succeeds and the server says welcome (without `features`, like a server older than them). */
  accept(heartbeatMs = 25_000, features?: ProtocolFeature[]): void {
    this.open();
    this.receive({
      type: 'welcome',
      protocol: 1,
      connectionId: `c-${FakeSocket.all.length}`,
      userId: 'alice',
      replicaId: 'r1',
      heartbeatMs,
      maxMessageBytes: 65536,
      ...(features ? { features } : {}),
    });
  }

  receive(...frames: ServerFrame[]): void {
    for (const frame of frames) this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverClose(code: number, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The upgrade is refused (a browser sees only 1006). */
  refuse(): void {
    this.serverClose(1006);
  }

  sentOfType(type: string): Record<string, unknown>[] {
    return this.sent.filter((f) => f.type === type);
  }

  /** The ack frames sent so far (`ack` for notifications, not the answers to commands, and `acks`). */
  ackFrames(): Record<string, unknown>[] {
    return this.sent.filter((f) => f.type === 'acks' || (f.type === 'ack' && !String(f.id).startsWith('c')));
  }

  /** The notification ids acked so far, one `ack` at a time or many in an `acks` frame. */
  ackedIds(): unknown[] {
    return this.sent.flatMap((f) => (f.type === 'ack' ? [f.id] : f.type === 'acks' ? (f.ids as unknown[]) : []));
  }
}

export function notification(
  seq: number,
  id = `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
): NotificationFrame {
  return {
    type: 'notification',
    id,
    seq,
    event: 'test',
    payload: { seq },
    timestamp: '2026-11-25T00:00:00.000Z',
    attempt: 1,
  };
}

/** A JWT-shaped token (unsigned: the client only reads `exp`). */
export function jwt(expSeconds: number, sub = 'alice'): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256' })}.${part({ sub, exp: expSeconds })}.sig`;
}

export function client(options: Partial<HeraldClientOptions> = {}): HeraldClient {
  return new HeraldClient({
    url: 'ws://herald.test/ws',
    token: 't0',
    WebSocket: FakeSocket,
    random: () => 0.5,
    // Unit tests never touch the network: the SSE fallback gets a fetch that fails. The WebSocket carries
    // the token in the query unless a test asks for tickets (their own tests in client.spec.ts).
    fetch: () => Promise.reject(new Error('no network in unit tests')),
    credentials: 'query',
    ...options,
  });
}

/** Lets pending promises and zero-delay timers run, then the timers of the next `ms` (those the promises set too). */
export async function settle(ms = 0): Promise<void> {
  await jest.advanceTimersByTimeAsync(0);
  await jest.advanceTimersByTimeAsync(ms);
}
