import type { ClientFrame, ServerFrame } from '@herald/protocol';

export const SSE_NO_COMMANDS =
  'topic changes need the WebSocket: the SSE fallback cannot send commands (subscriptions made before stay in force)';

interface PendingCommand {
  frame: Extract<ClientFrame, { id?: string }>;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface SubscriptionsLink {
  /** Writes a frame on the open connection; false when there is none. */
  send(frame: ClientFrame): boolean;
  /** The transport in use now (or next) can send commands (not SSE). */
  duplex(): boolean;
}

/**
 * The topics to subscribe to on every connect, and the commands waiting for the server's answer by id
 * (`subscribe`, `unsubscribe`, and the in-band `auth` of a token refresh).
 */
export class Subscriptions {
  private readonly topics: Set<string>;
  private readonly pending = new Map<string, PendingCommand>();
  private seq = 0;

  constructor(
    topics: readonly string[],
    private readonly link: SubscriptionsLink,
  ) {
    this.topics = new Set(topics);
  }

  subscribe(topic: string): Promise<void> {
    this.topics.add(topic);
    return this.command({ type: 'subscribe', channel: topic });
  }

  unsubscribe(topic: string): Promise<void> {
    this.topics.delete(topic);
    return this.command({ type: 'unsubscribe', channel: topic });
  }

  /** Sends `auth` with a fresh token; resolves when the server takes it. Null when not connected (not sent). */
  auth(token: string): Promise<void> | null {
    const id = this.nextId();
    const accepted = new Promise<void>((resolve, reject) => {
      this.pending.set(id, { frame: { type: 'auth', token, id }, resolve, reject });
    });
    if (!this.link.send({ type: 'auth', token, id })) {
      this.pending.delete(id);
      return null;
    }
    return accepted;
  }

  /** Settles the command an `ack` or `error` frame answers; false when it answers none. */
  answered(frame: Extract<ServerFrame, { type: 'ack' | 'error' }>): boolean {
    const command = frame.id === undefined ? undefined : this.pending.get(frame.id);
    if (!command || frame.id === undefined) return false;
    this.pending.delete(frame.id);
    if (frame.type === 'ack') {
      command.resolve();
      return true;
    }
    // A refused subscribe is not sent again on every reconnect.
    if (command.frame.type === 'subscribe') this.topics.delete(command.frame.channel);
    command.reject(new Error(`${frame.code}: ${frame.message}`));
    return true;
  }

  /** A duplex connection opened: every topic subscribed again, then the commands that waited for it. */
  opened(): void {
    for (const topic of this.topics) {
      const pending = [...this.pending.values()].some((c) => c.frame.type === 'subscribe' && c.frame.channel === topic);
      if (!pending) this.link.send({ type: 'subscribe', channel: topic });
    }
    for (const command of this.pending.values()) this.link.send(command.frame);
  }

  /** A listen-only connection (SSE) opened: the commands that waited cannot be sent. */
  refuseAll(): void {
    for (const [id, command] of this.pending) {
      this.pending.delete(id);
      command.reject(new Error(SSE_NO_COMMANDS));
    }
  }

  /** A connection ended: an `auth` in flight is moot; subscribes wait for the next welcome. */
  connectionClosed(): void {
    for (const [id, command] of this.pending) {
      if (command.frame.type === 'auth') {
        this.pending.delete(id);
        command.reject(new Error('connection closed'));
      }
    }
  }

  /** The client stopped: every command fails. */
  clientClosed(code: number, reason: string): void {
    for (const command of this.pending.values()) command.reject(new Error(`client closed (${code}): ${reason}`));
    this.pending.clear();
  }

  private command(frame: PendingCommand['frame']): Promise<void> {
    const id = this.nextId();
    const withId = { ...frame, id };
    const done = new Promise<void>((resolve, reject) => {
      if (!this.link.duplex()) {
        reject(new Error(SSE_NO_COMMANDS));
        return;
      }
      this.pending.set(id, { frame: withId, resolve, reject });
      // Not open yet: sent on the next welcome.
      this.link.send(withId);
    });
    // A caller that does not await must not get an unhandled rejection when the client closes.
    done.catch(() => undefined);
    return done;
  }

  private nextId(): string {
    return `c${++this.seq}`;
  }
}
