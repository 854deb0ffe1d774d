import type { ClientFrame, NotificationFrame, ServerFrame } from '@herald/protocol';
import { SentLog } from './sent-log';
import type { ClientTransport } from './transport';

/** How long a send buffer may stay over HERALD_MAX_BUFFERED_BYTES before its reader is cut off. */
export const SLOW_CONSUMER_GRACE_MS = 1000;
/**
 * A first send whose bus message comes after the replay that already sent it (the replay read its row once
 * it was committed, before the bus brought it) is not sent again. Only notifications created this recently
 * before the replay can still be on the bus; their ids are kept this long after it (see `lateLive`).
 */
export const LATE_LIVE_MS = 60_000;
/** Acks a connection may send at its start without spending frame-rate tokens (see `ackCredit`). */
export const INITIAL_ACK_ALLOWANCE = 1000;

/**
 * Per-connection limits (HERALD_MAX_BUFFERED_BYTES, HERALD_CLIENT_FRAMES_PER_SECOND, HERALD_CLIENT_FRAMES_BURST,
 * HERALD_ACK_THROUGH_WINDOW).
 */
export interface ConnectionLimits {
  maxBufferedBytes: number;
  framesPerSecond: number;
  framesBurst: number;
  /** Unacked notifications remembered in send order for acks with `through` (WebSocket only; 0: none). */
  ackThroughWindow: number;
}

/** What the rate limiter says of one client frame: take it, answer RATE_LIMITED, or close with 1008. */
export type Admission = 'ok' | 'limited' | 'close';

/** Why the server cut a connection off without a close handshake. */
export type CutOff = 'slow-consumer' | 'dead-peer';

export interface ConnectionInfo {
  id: string;
  userId: string;
  /** Epoch ms (a number, not a Date: one object less per connection). */
  connectedAt: number;
  remoteAddress: string;
  userAgent: string;
  /** Token expiry (epoch seconds); moved on by an in-band `auth` refresh. */
  tokenExpiresAt: number;
  /** The client asked for the `inbox` feature (and the inbox is on): it is sent `state` frames. */
  inbox?: true;
}

/**
 * One live connection of a user on this replica (a WebSocket or an SSE stream). While the replay on connect
 * runs, live notifications are held back and sent after it, skipping any the
 * replay already sent, so the client sees replay (in seq order) then live.
 */
export class Connection {
  private replaying = true;
  /** Made only when needed and dropped after the replay: an idle connection holds neither. */
  private held: NotificationFrame[] | null = null;
  private replayed: Set<string> | null = null;
  /**
   * First sends of recent notifications (created within LATE_LIVE_MS) that the replay sent: their bus message
   * may still come after the replay ended, and is then not sent again. Kept until `lateLiveUntil`, and only
   * made when a replay sent such a notification.
   */
  private lateLive: Set<string> | null = null;
  private lateLiveUntil = 0;
  private replayWaiters: (() => void)[] | null = null;
  /**
   * A bus catch-up asked for while a replay was running (`due`): when that replay ends, live frames stay held
   * (`ready`) until the catch-up's own replay has sent what the bus missed, so they cannot go ahead of it.
   */
  private catchUp: 'none' | 'due' | 'ready' = 'none';
  /**
   * How many frames were held when the running replay began reading the record (`replayReading`). Their
   * notifications were committed before they came (the bus routes after the commit), so a replay that read
   * to the end and did not send one found it no longer open for this user (acked on another connection,
   * expired): it is left out, not sent after newer ones the replay sent.
   */
  private heldAtRead = 0;
  /** Replayed notifications not sent again since this connection has them unacked (see `sendReplayed`). */
  replaySkipped = 0;
  /** Cleared on every ping, set by the pong: false at the next ping means the peer is gone. */
  alive = true;
  /** An SSE client that has answered a heartbeat once is held to answering them all. */
  private answersPings = false;
  /** Client commands running against the store, and those waiting for a slot. */
  commandsRunning = 0;
  /** Acks being written (they do not take command slots: see ConnectionCommands.command). */
  acksRunning = 0;
  /** Commands waiting for a slot; made with the first one to wait. */
  commandQueue: ClientFrame[] | null = null;
  /** Set when the server terminated the connection itself; read when it closes, for the log and the metric. */
  cutOff: CutOff | undefined;
  /**
   * Token bucket of client frames, refilled lazily from the clock (no timer per connection), and a
   * second bucket of refusals that leaks at the same rate: a client that keeps sending after it was
   * told to slow down overflows it.
   */
  private tokens: number;
  private refusals = 0;
  private refilledAt = Date.now();
  /**
   * Acks that are not rate-limited: one per notification sent on this connection, plus an allowance
   * at the start for acks a client queued while it was disconnected and sends right after `welcome`.
   */
  private ackCredit = INITIAL_ACK_ALLOWANCE;
  /** Replayed notifications the client has not acked yet, as its ack frames count (see `ackedDownTo`). */
  private replayUnacked = 0;
  private ackWaiter: (() => void) | undefined;
  /** Since when the send buffer has been over HERALD_MAX_BUFFERED_BYTES (undefined: it is not). */
  private overCapSince: number | undefined;
  /** Closed for flooding: frames still arriving before the close completes are ignored, not answered. */
  ignoreFrames = false;
  /** What was sent here and is not acked yet, for acks with `through`; made with the first send. */
  private sent: SentLog | null = null;

  constructor(
    readonly info: ConnectionInfo,
    private readonly transport: ClientTransport,
    private readonly limits: ConnectionLimits,
  ) {
    this.tokens = limits.framesBurst;
  }

  get transportKind(): ClientTransport['kind'] {
    return this.transport.kind;
  }

  get id(): string {
    return this.info.id;
  }

  get userId(): string {
    return this.info.userId;
  }

  get isOpen(): boolean {
    return this.transport.isOpen;
  }

  get bufferedAmount(): number {
    return this.transport.bufferedAmount;
  }

  /**
   * Sends a frame. A peer that leaves more than HERALD_MAX_BUFFERED_BYTES unread for
   * SLOW_CONSUMER_GRACE_MS, or four times that at any moment, is cut off at once: a close frame
   * would only queue behind what it does not read. (The grace lets a healthy reader take a burst,
   * such as the live frames held back during its replay.) Whatever it had not acked is replayed
   * when it comes back.
   */
  send(frame: ServerFrame, now?: number): void {
    if (!this.transport.isOpen || this.cutOff !== undefined) return;
    this.transport.send(frame);
    if (frame.type === 'notification') {
      this.ackCredit += 1;
      if (this.ackThrough) (this.sent ??= new SentLog(this.limits.ackThroughWindow)).record(frame.id);
    }
    const buffered = this.transport.bufferedAmount;
    if (buffered <= this.limits.maxBufferedBytes) {
      this.overCapSince = undefined;
      return;
    }
    // The clock is read only here, over the cap: not on every send of every socket.
    const at = now ?? Date.now();
    this.overCapSince ??= at;
    if (buffered > 4 * this.limits.maxBufferedBytes || at - this.overCapSince >= SLOW_CONSUMER_GRACE_MS) {
      this.cutOff = 'slow-consumer';
      this.transport.terminate();
    }
  }

  /**
   * Rate limit of client frames. `acks`: how many acks the frame carries (0 for any other frame). Acks of
   * notifications this connection was sent are free (a client acking a replay burst is doing what it
   * should): they use up that credit instead. Every ack beyond it costs a token, as a frame does, so a
   * frame of 500 made-up ids costs 500; any other frame costs one.
   */
  admit(acks: number, now = Date.now()): Admission {
    const free = Math.min(acks, this.ackCredit);
    const cost = acks > 0 ? acks - free : 1;
    if (cost === 0) {
      this.ackCredit -= free;
      return 'ok';
    }
    const elapsed = Math.max(0, now - this.refilledAt) / 1000;
    this.refilledAt = now;
    const refill = elapsed * this.limits.framesPerSecond;
    this.tokens = Math.min(this.limits.framesBurst, this.tokens + refill);
    this.refusals = Math.max(0, this.refusals - refill);
    if (this.tokens >= cost) {
      this.tokens -= cost;
      this.ackCredit -= free;
      return 'ok';
    }
    this.refusals += 1;
    return this.refusals > this.limits.framesBurst ? 'close' : 'limited';
  }

  /** Whether acks with `through` work here: WebSocket connections, unless HERALD_ACK_THROUGH_WINDOW is 0. */
  get ackThrough(): boolean {
    return this.limits.ackThroughWindow > 0 && this.transport.kind === 'websocket';
  }

  /** A notification sent here is settled (acked by id, or found expired): a later `through` skips it. */
  settled(id: string): void {
    this.sent?.forget(id);
  }

  /**
   * For an ack with `through`: `id` and every notification sent here before it and not settled since, taken
   * out of the log; null when `id` is not in it (never sent here, settled already, or past the window).
   */
  takeThrough(id: string): string[] | null {
    const covered = this.sent?.takeThrough(id) ?? null;
    if (this.sent?.size === 0) this.sent = null;
    if (covered) {
      // The frame was admitted and counted as one ack; the others it covers use up their credit and pace the replay.
      this.ackCredit = Math.max(0, this.ackCredit - (covered.length - 1));
      this.acked(covered.length - 1);
    }
    return covered;
  }

  /**
   * Sends a live notification, or holds it while the replay is running. A first send the last replay sent
   * already (its bus message came late, see `lateLive`) is not sent again.
   */
  deliver(frame: NotificationFrame): void {
    if (this.replaying) (this.held ??= []).push(frame);
    else if (!this.lateLive || !this.sentByReplay(frame)) this.send(frame);
  }

  private sentByReplay(frame: NotificationFrame): boolean {
    if (Date.now() > this.lateLiveUntil) {
      this.lateLive = null;
      return false;
    }
    return frame.attempt === 1 && this.lateLive!.has(frame.id);
  }

  /**
   * Sends a replayed notification, except one this connection was sent and has not acked (still in its sent
   * log): a catch-up after the bus came back (BusCatchUp) reads those too.
   */
  sendReplayed(frame: NotificationFrame, now = Date.now()): void {
    (this.replayed ??= new Set()).add(frame.id);
    if (frame.attempt === 1 && Date.parse(frame.timestamp) > now - LATE_LIVE_MS) {
      (this.lateLive ??= new Set()).add(frame.id);
      this.lateLiveUntil = now + LATE_LIVE_MS;
    }
    if (this.sent?.has(frame.id)) {
      this.replaySkipped += 1;
      return;
    }
    this.replayUnacked += 1;
    this.send(frame);
  }

  /**
   * Holds live notifications back again for a replay of what the bus missed (BusCatchUp); false while a
   * replay is already running, which then keeps them held when it ends, for the catch-up to call again after
   * `afterReplay`.
   */
  holdLive(): boolean {
    if (this.catchUp === 'ready') {
      this.catchUp = 'none';
      this.replaySkipped = 0;
      return true;
    }
    if (this.replaying) {
      this.catchUp = 'due';
      return false;
    }
    this.replaying = true;
    this.replaySkipped = 0;
    return true;
  }

  /** Resolves once no replay is running on this connection (at once when none is). */
  afterReplay(): Promise<void> {
    if (!this.replaying || this.catchUp === 'ready') return Promise.resolve();
    return new Promise((resolve) => (this.replayWaiters ??= []).push(resolve));
  }

  /** The client sent `count` acks (of any ids): the replay may go on once enough have come. */
  acked(count: number): void {
    if (count <= 0 || !this.replaying) return;
    this.replayUnacked = Math.max(0, this.replayUnacked - count);
    const wake = this.ackWaiter;
    this.ackWaiter = undefined;
    wake?.();
  }

  /**
   * Resolves once at most `max` replayed notifications are unacked, the socket closed, or no ack came for
   * `stallMs` (a client that acks slowly, or not at all, is then replayed to at the pace it reads).
   */
  async ackedDownTo(max: number, stallMs: number): Promise<void> {
    while (this.replayUnacked > max && this.isOpen) {
      const progressed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.ackWaiter = undefined;
          resolve(false);
        }, stallMs);
        this.ackWaiter = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!progressed) return;
    }
  }

  /** The replay is about to read the record: the frames held so far are in what it reads. */
  replayReading(): void {
    this.heldAtRead = this.held?.length ?? 0;
  }

  /**
   * The replay is over. `readAll`: it read the record to the end after `replayReading`, so the frames held
   * before that it did not send are no longer open here and are dropped; otherwise (its read failed) every
   * held frame it did not send goes out.
   */
  finishReplay(readAll = false): void {
    this.replayUnacked = 0;
    const settledBefore = readAll ? this.heldAtRead : 0;
    this.heldAtRead = 0;
    if (this.catchUp === 'due') {
      // Still holding, for the catch-up's replay that `afterReplay` lets start (BusCatchUp).
      this.catchUp = 'ready';
      this.wakeReplayWaiters();
      return;
    }
    this.replaying = false;
    const held = (this.held ?? []).slice(settledBefore);
    const replayed = this.replayed;
    this.held = null;
    this.replayed = null;
    held.sort((a, b) => a.seq - b.seq);
    for (const frame of held) if (!replayed?.has(frame.id)) this.send(frame);
    this.wakeReplayWaiters();
  }

  private wakeReplayWaiters(): void {
    const waiters = this.replayWaiters;
    this.replayWaiters = null;
    for (const wake of waiters ?? []) wake();
  }

  /**
   * Resolves once the socket's send buffer is down to `maxBufferedBytes`, the
   * socket closed, or `timeoutMs` passed: lets a replay go at the reader's pace.
   */
  async drained(maxBufferedBytes: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.isOpen && this.transport.bufferedAmount > maxBufferedBytes && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** The peer answered a heartbeat: a WebSocket pong, or an SSE client's POST /v1/stream/pong. */
  pong(): void {
    this.alive = true;
    this.answersPings = true;
  }

  ping(): void {
    // A plain EventSource never answers: its stream is ended only by TCP (or the token's expiry).
    this.alive = !(this.transport.answersPings || this.answersPings);
    if (this.transport.isOpen) this.transport.ping();
  }

  close(code: number, reason: string): void {
    this.transport.close(code, reason);
  }

  terminate(): void {
    this.transport.terminate();
  }
}
