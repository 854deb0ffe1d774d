import type { AcksResponse, ClientFrame, ServerFrame } from '@herald/protocol';
import { errorMessageOf, messageOf, parseJson } from './http.js';
import type { ClientEvents } from './types.js';

/** How long an ack waits for others to go with it, when no burst is being handled. */
export const ACK_COALESCE_MS = 5;
/** Longest the acks of handled notifications wait for the rest of their burst before they are sent. */
export const ACK_HOLD_MS = 50;
/** This many acks waiting are sent at once, without waiting for the timer. */
const ACK_FLUSH_AT = 100;
/** Most acks in one `POST /v1/acks` or one `acks` frame (the protocol's MAX_ACKS_PER_REQUEST). */
export const MAX_ACKS_PER_BATCH = 500;
/** Past this many arrivals not yet acked, a connection stops using `through` (rather than forget one). */
const MAX_ARRIVALS = 10_000;

export type AckFrame = Extract<ClientFrame, { type: 'ack' | 'acks' }>;

/**
 * The acks waiting to be sent, and how they go: coalesced over a few milliseconds, then, on a WebSocket
 * whose welcome lists `ackThrough`, one `{type:'ack', id, through:true}` for the longest run of handled
 * notifications at the head of what this connection received, and per id for the rest (with `quiet` where
 * the welcome lists `quietAcks`: the server answers those only when they fail).
 */
export class AckOutbox {
  /** Ids to ack, in the order they were handled; they survive reconnects. */
  private readonly pending = new Set<string>();
  /**
   * This connection's notifications not yet acked, in wire order (the server's send order), with whether
   * they are handled. Null when the connection does not use `through`. An entry not handled (waiting for
   * the handler or a manual ack, or its handler failed) is a barrier: no `through` covers it.
   */
  private arrivals: Map<string, boolean> | null = null;
  /** `through` acks sent and not yet answered: their id → every id they cover. */
  private readonly throughInFlight = new Map<string, string[]>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dueAt = 0;
  /** A flush asked for by a sender that failed (an ack POST), apart from the coalescing timer. */
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Per-id acks go with `quiet: true` on this connection. */
  private quiet = false;

  /** `flush` sends what is pending now (the client knows the transport); the outbox calls it when due. */
  constructor(private readonly flush: () => void) {}

  /** How many acks wait to be sent. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * A connection opened; `through` when it may use `{type:'ack', through:true}`, `quiet` when its per-id acks
   * may go unanswered.
   */
  opened(through: boolean, quiet = false): void {
    this.arrivals = through ? new Map() : null;
    this.quiet = quiet;
  }

  /** The connection ended: a `through` means nothing on the next one, so what it covered goes per id. */
  closed(): void {
    this.cancel();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.arrivals = null;
    for (const ids of this.throughInFlight.values()) for (const id of ids) this.pending.add(id);
    this.throughInFlight.clear();
  }

  /** A notification arrived on this connection (a copy keeps the place of the first, as on the server). */
  arrived(id: string): void {
    if (!this.arrivals || this.arrivals.has(id)) return;
    if (this.arrivals.size >= MAX_ARRIVALS) this.stopThrough();
    else this.arrivals.set(id, false);
  }

  /** Something arrived that might have been a notification but could not be read: never cover past it. */
  stopThrough(): void {
    this.arrivals = null;
  }

  /** Acks `id` (handled by the app), sent within `withinMs`, or at once when many are waiting. */
  add(id: string, withinMs: number): void {
    this.pending.add(id);
    if (this.arrivals?.has(id)) this.arrivals.set(id, true);
    if (this.pending.size >= ACK_FLUSH_AT) this.flush();
    else this.flushWithin(withinMs);
  }

  /** Flushes no later than `ms` from now (sooner if already due sooner); nothing when nothing waits. */
  flushWithin(ms: number): void {
    if (this.pending.size === 0) return;
    const dueAt = Date.now() + ms;
    if (this.timer !== undefined && this.dueAt <= dueAt) return;
    clearTimeout(this.timer);
    this.dueAt = dueAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, ms);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Flushes again in `ms` (a send that failed); forgotten when the connection ends. */
  retryIn(ms: number): void {
    this.retryTimer = setTimeout(() => this.flush(), ms);
  }

  /**
   * Sends what is pending on a WebSocket: a `through` for the handled head of the arrivals when it holds
   * two or more, then the rest per id (`ack`, or `acks` of up to 500). Stops, keeping the rest, when `send`
   * cannot send.
   */
  sendOn(send: (frame: AckFrame) => boolean): void {
    const head = this.handledHead();
    if (head.length >= 2) {
      const last = head[head.length - 1]!;
      if (!send({ type: 'ack', id: last, through: true })) return;
      for (const id of head) this.forget(id);
      this.throughInFlight.set(last, head);
    }
    while (this.pending.size > 0) {
      const ids = this.first(MAX_ACKS_PER_BATCH);
      const frame: AckFrame = ids.length === 1 ? { type: 'ack', id: ids[0]! } : { type: 'acks', ids };
      if (this.quiet) frame.quiet = true;
      if (!send(frame)) return;
      for (const id of ids) this.forget(id);
    }
  }

  /**
   * The server's answer to a `through`: true when `frame` was one (the client looks no further). An `ack`
   * settles it; an `error` (the server refused to cover them) sends its ids again, per id.
   */
  answered(frame: ServerFrame): boolean {
    if ((frame.type !== 'ack' && frame.type !== 'error') || frame.id === undefined) return false;
    const covered = this.throughInFlight.get(frame.id);
    if (!covered) return false;
    this.throughInFlight.delete(frame.id);
    if (frame.type === 'error') {
      for (const id of covered) this.pending.add(id);
      this.flushWithin(ACK_COALESCE_MS);
    }
    return true;
  }

  /** The first `max` pending ids, still pending (SSE: until `sent`). */
  first(max: number): string[] {
    const ids: string[] = [];
    for (const id of this.pending) {
      if (ids.length === max) break;
      ids.push(id);
    }
    return ids;
  }

  /** These were sent (SSE): no longer pending. */
  sent(ids: readonly string[]): void {
    for (const id of ids) this.forget(id);
  }

  /** The longest run of handled notifications at the head of this connection's arrivals. */
  private handledHead(): string[] {
    const head: string[] = [];
    for (const [id, handled] of this.arrivals ?? []) {
      if (!handled) break;
      head.push(id);
    }
    return head;
  }

  private forget(id: string): void {
    this.pending.delete(id);
    this.arrivals?.delete(id);
  }
}

export interface AckPosterOptions {
  fetch: typeof fetch | undefined;
  acksUrl: string;
  /** The client is open on the transport that posts (SSE). */
  open(): boolean;
  token(): string | undefined;
  /** The server refused the token (401): the next connect fetches a fresh one. */
  tokenRefused(): void;
  error(event: ClientEvents['error']): void;
}

/** SSE acks, which cannot go as frames: `POST /v1/acks`; acks made while one is in flight go together in the next. */
export class AckPoster {
  private posting = false;

  constructor(
    private readonly outbox: AckOutbox,
    private readonly options: AckPosterOptions,
  ) {}

  async post(): Promise<void> {
    if (this.posting || !this.options.fetch) return;
    this.posting = true;
    try {
      while (this.outbox.size > 0 && this.options.open()) {
        const ids = this.outbox.first(MAX_ACKS_PER_BATCH);
        const status = await this.postBatch(ids, this.options.token());
        if (status === 'retry') {
          this.outbox.retryIn(1000);
          return;
        }
        this.outbox.sent(ids);
      }
    } finally {
      this.posting = false;
    }
  }

  /** The client closes: one last POST for the acks made so far; what it cannot send comes back as a redelivery. */
  postLast(): void {
    if (this.outbox.size === 0) return;
    const ids = this.outbox.first(MAX_ACKS_PER_BATCH);
    this.outbox.sent(ids);
    void this.postBatch(ids, this.options.token()).catch(() => undefined);
  }

  /**
   * One POST. 'done' when the batch needs no resending: accepted, or refused
   * as malformed (sending it again cannot help; the server redelivers and the
   * client acks again). 'retry' on a network failure, 5xx or 429; a 401 also
   * asks for a fresh token at the next connect.
   */
  private async postBatch(ids: string[], token: string | undefined): Promise<'done' | 'retry'> {
    let response: Response;
    try {
      response = await this.options.fetch!(this.options.acksUrl, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token ?? ''}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ids }),
      });
    } catch (cause) {
      this.options.error({ message: `acks not sent, retrying: ${messageOf(cause)}`, cause });
      return 'retry';
    }
    if (response.ok) {
      const body = parseJson<AcksResponse>(await response.text().catch(() => ''));
      for (const result of body?.results ?? []) {
        if (result.status === 'forbidden') {
          this.options.error({ message: `ack refused for ${result.id}`, code: 'FORBIDDEN' });
        }
      }
      return 'done';
    }
    const message = `POST acks answered ${response.status}: ${await errorMessageOf(response)}`;
    if (response.status === 401) this.options.tokenRefused();
    if (response.status === 401 || response.status === 429 || response.status >= 500) {
      this.options.error({ message: `${message}; retrying` });
      return 'retry';
    }
    this.options.error({ message: `${message}; these acks are dropped (the server sends them again)` });
    return 'done';
  }
}
