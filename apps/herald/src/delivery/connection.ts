import type { ClientFrame, NotificationFrame, ServerFrame } from '@herald/protocol';
import type { ClientTransport } from './transport';

export interface ConnectionInfo {
  id: string;
  userId: string;
  connectedAt: Date;
  remoteAddress: string;
  userAgent: string;
  /** Token expiry (epoch seconds); moved on by an in-band `auth` refresh. */
  tokenExpiresAt: number;
}

/**
 * One live connection of a user on this replica (a WebSocket or an SSE stream). While the replay on connect
 * runs, live notifications are held back and sent after it, skipping any the
 * replay already sent, so the client sees replay (in seq order) then live.
 */
export class Connection {
  private replaying = true;
  private held: NotificationFrame[] = [];
  private readonly replayed = new Set<string>();
  /** Cleared on every ping, set by the pong: false at the next ping means the peer is gone. */
  alive = true;
  /** An SSE client that has answered a heartbeat once is held to answering them all. */
  private answersPings = false;
  /** Client commands running against the store, and those waiting for a slot. */
  commandsRunning = 0;
  readonly commandQueue: ClientFrame[] = [];

  constructor(
    readonly info: ConnectionInfo,
    private readonly transport: ClientTransport,
  ) {}

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

  send(frame: ServerFrame): void {
    if (this.transport.isOpen) this.transport.send(frame);
  }

  /** Sends a live notification, or holds it while the replay is running. */
  deliver(frame: NotificationFrame): void {
    if (this.replaying) this.held.push(frame);
    else this.send(frame);
  }

  sendReplayed(frame: NotificationFrame): void {
    this.replayed.add(frame.id);
    this.send(frame);
  }

  finishReplay(): void {
    this.replaying = false;
    const held = this.held;
    this.held = [];
    held.sort((a, b) => a.seq - b.seq);
    for (const frame of held) if (!this.replayed.has(frame.id)) this.send(frame);
    this.replayed.clear();
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
