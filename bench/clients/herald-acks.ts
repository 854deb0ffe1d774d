/**
 * How a Herald load client acks what it receives, in one of two ways (`--herald-acks`):
 * - IdAcks, the client before `ackThrough`: the acks of one read go together, in one `ack` frame or in
 *   `acks` frames of up to MAX_ACKS_PER_REQUEST ids, at most WINDOW unanswered; ids refused RATE_LIMITED
 *   are sent again.
 * - ThroughAcks, as the SDK acks by default (libs/client/src/acks.ts): acks are coalesced over
 *   COALESCE_MS, and a flush of two or more is one `{"type":"ack","id":<last received>,"through":true}`,
 *   whose answer's `settled` counts as acked (a flush of one is an `ack` by id, as in the SDK). It is used
 *   only when the welcome lists `ackThrough`; an error answer, or fewer settled than the flush held, sends
 *   that flush's ids again one by one through IdAcks.
 */
import { MAX_ACKS_PER_REQUEST } from '@herald/protocol';
import type WebSocket from 'ws';
import type { HeraldAckMode } from '../lib/ipc';

/**
 * Where a connection's acks are counted: the ids acked (ok or duplicate, or settled) and other answers. A
 * quiet ack is counted when it is sent (no answer comes) and taken back if an error names it.
 */
export interface AckTally {
  acked(ids: string[]): void;
  other(n: number): void;
  takenBack(ids: string[]): void;
}

/** The server frames that answer acks, as far as the bench reads them. */
export interface AckAnswer {
  type: string;
  id?: string;
  ids?: string[];
  results?: { id: string; status: string }[];
  code?: string;
  status?: string;
  settled?: number;
}

export interface HeraldAcks {
  /** A notification arrived (called in wire order). */
  received(id: string): void;
  /** An `ack`, `acks` or `error` frame from the server. */
  answer(frame: AckAnswer): void;
}

const settledOk = (status: string | undefined) => status === 'ok' || status === 'duplicate';

export class IdAcks implements HeraldAcks {
  /** Acks unanswered at most: the server refuses more than HERALD_MAX_QUEUED_COMMANDS (1000) waiting. */
  private static readonly WINDOW = 1000;
  private readonly queue: string[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly tally: AckTally,
    /** The welcome lists `quietAcks`: acks go with `quiet`, answered only when they fail. */
    private readonly quiet = false,
  ) {}

  received(id: string): void {
    this.queue.push(id);
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  answer(frame: AckAnswer): void {
    switch (frame.type) {
      case 'ack':
        this.answered(frame.status, frame.id);
        break;
      case 'acks':
        for (const result of frame.results ?? []) this.answered(result.status, result.id);
        break;
      case 'error': {
        const ids = frame.ids ?? (frame.id ? [frame.id] : []);
        if (ids.length === 0) return;
        if (this.quiet) {
          // Counted when sent: take them back, and send again what the server could not take now.
          this.tally.takenBack(ids);
          if (frame.code === 'RATE_LIMITED' || frame.code === 'UNAVAILABLE') this.requeue(ids);
          else this.tally.other(ids.length);
          return;
        }
        if (frame.code === 'RATE_LIMITED') return this.retry(ids);
        for (const id of ids) this.answered(undefined, id);
        break;
      }
      default:
        return;
    }
    this.pump();
  }

  private answered(status: string | undefined, id: string | undefined): void {
    this.inFlight--;
    // An answer always names its id (protocol.md); '' keeps the count if one did not.
    if (settledOk(status)) this.tally.acked([id ?? '']);
    else this.tally.other(1);
  }

  private retry(ids: string[]): void {
    this.inFlight -= ids.length;
    this.requeue(ids);
  }

  private requeue(ids: string[]): void {
    setTimeout(() => {
      for (const id of ids) this.received(id);
    }, 20);
  }

  private pump(): void {
    while (this.inFlight < IdAcks.WINDOW && this.queue.length > 0) {
      const n = Math.min(MAX_ACKS_PER_REQUEST, IdAcks.WINDOW - this.inFlight, this.queue.length);
      const ids = this.queue.splice(0, n);
      if (this.quiet) {
        this.socket.send(
          ids.length === 1
            ? `{"type":"ack","id":"${ids[0]!}","quiet":true}`
            : JSON.stringify({ type: 'acks', ids, quiet: true }),
        );
        this.tally.acked(ids);
        continue;
      }
      this.inFlight += n;
      this.socket.send(ids.length === 1 ? `{"type":"ack","id":"${ids[0]!}"}` : JSON.stringify({ type: 'acks', ids }));
    }
  }
}

export class ThroughAcks implements HeraldAcks {
  /** The SDK's coalescing window for acks. */
  static readonly COALESCE_MS = 5;
  /** A flush goes at once when this many acks wait, as in the SDK. */
  static readonly FLUSH_AT = 100;
  /** Received and not acked yet, in wire order (a repeated id keeps its first place, as in the server's log). */
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Throughs awaiting their answer: the id sent → every id the flush held. */
  private readonly throughs = new Map<string, string[]>();

  constructor(
    private readonly socket: WebSocket,
    private readonly tally: AckTally,
    private readonly byId: IdAcks,
  ) {}

  received(id: string): void {
    this.pending.add(id);
    if (this.pending.size >= ThroughAcks.FLUSH_AT) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), ThroughAcks.COALESCE_MS);
  }

  answer(frame: AckAnswer): void {
    const covered = frame.id === undefined ? undefined : this.throughs.get(frame.id);
    if (!covered || (frame.type !== 'ack' && frame.type !== 'error')) return this.byId.answer(frame);
    this.throughs.delete(frame.id!);
    if (frame.type === 'ack' && (frame.settled ?? 0) >= covered.length) return this.tally.acked(covered);
    // An error, or fewer settled than the flush held (the server's send window let the oldest go): ack them
    // by id. One the through did settle is answered `duplicate`, and counted once, then.
    for (const id of covered) this.byId.received(id);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const ids = [...this.pending];
    this.pending.clear();
    const last = ids.at(-1);
    if (last === undefined) return;
    // One id goes by id, as the SDK sends it; so does a redelivery of an id whose through is still
    // unanswered (the two answers could not be told apart).
    if (ids.length === 1 || this.throughs.has(last)) {
      for (const id of ids) this.byId.received(id);
      return;
    }
    this.throughs.set(last, ids);
    this.socket.send(`{"type":"ack","id":"${last}","through":true}`);
  }
}

/** A connection's acks, chosen once its welcome's `features` tell whether `ackThrough` is there. */
export function heraldAcksFor(
  socket: WebSocket,
  tally: AckTally,
  mode: HeraldAckMode,
  features: string[] | undefined,
): HeraldAcks {
  const byId = new IdAcks(socket, tally, mode !== 'ids' && features?.includes('quietAcks') === true);
  return mode === 'through' && features?.includes('ackThrough') ? new ThroughAcks(socket, tally, byId) : byId;
}
