import type { NotificationFrame, ServerFrame, WelcomeFrame } from '@herald/protocol';
import WebSocket from 'ws';

/** A raw `ws` client that records every frame, for asserting on the protocol. */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  /** When each notification id first arrived (ms since the epoch). */
  private readonly firstArrivals = new Map<string, number>();
  private waiters: (() => void)[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private readonly closed: Promise<void>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: WebSocket.RawData) => {
      const frame = JSON.parse(rawText(data)) as ServerFrame;
      this.frames.push(frame);
      if (frame.type === 'notification' && !this.firstArrivals.has(frame.id))
        this.firstArrivals.set(frame.id, Date.now());
      this.notify();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.notify();
        resolve();
      }),
    );
  }

  /** Connects and waits for `welcome`. */
  static async connect(
    url: string,
    token: string,
    options: {
      via?: 'query' | 'header';
      autoAck?: boolean;
      autoPong?: boolean;
      origin?: string;
      /** Source address of the TCP connection, e.g. 127.0.0.2 to tell this client apart on loopback. */
      localAddress?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<TestClient> {
    const via = options.via ?? 'query';
    const headers: Record<string, string> = {
      ...options.headers,
      ...(via === 'header' ? { authorization: `Bearer ${token}` } : {}),
    };
    if (options.origin !== undefined) headers.origin = options.origin;
    const target = via === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
    const socket = new WebSocket(target, {
      headers,
      autoPong: options.autoPong ?? true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    if (options.autoAck) {
      socket.on('message', (data: WebSocket.RawData) => {
        const frame = JSON.parse(rawText(data)) as ServerFrame;
        if (frame.type === 'notification') client.send({ type: 'ack', id: frame.id });
      });
    }
    await client.next((f): f is WelcomeFrame => f.type === 'welcome');
    return client;
  }

  /** Tries an upgrade that should be refused; resolves with the HTTP status. */
  static async refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers });
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('open', () => {
        socket.close();
        reject(new Error('upgrade was accepted'));
      });
      socket.once('error', () => undefined);
    });
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** When the notification first arrived (ms since the epoch); throws when it has not. */
  receivedAt(id: string): number {
    const at = this.firstArrivals.get(id);
    if (at === undefined) throw new Error(`notification ${id} has not arrived`);
    return at;
  }

  notifications(): NotificationFrame[] {
    return this.frames.filter((f): f is NotificationFrame => f.type === 'notification');
  }

  /** Waits for the first frame (after `from`) that matches. */
  async next<T extends ServerFrame>(match: (f: ServerFrame) => f is T, timeoutMs?: number, from?: number): Promise<T>;
  async next(match: (f: ServerFrame) => boolean, timeoutMs?: number, from?: number): Promise<ServerFrame>;
  async next(match: (f: ServerFrame) => boolean, timeoutMs = 10_000, from = 0): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(match);
      if (found) return found;
      if (this.closeCode !== null)
        throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) before a matching frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until `count` notifications with this id have arrived. */
  async notification(id: string, count = 1, timeoutMs = 10_000): Promise<NotificationFrame[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.notifications().filter((n) => n.id === id);
      if (got.length >= count) return got;
      if (Date.now() > deadline)
        throw new Error(`got ${got.length}/${count} of notification ${id} within ${timeoutMs} ms`);
      await this.next(() => true, Math.max(1, deadline - Date.now()), this.frames.length).catch(() => undefined);
    }
  }

  /** Sends a command with an id and waits for its answer (`ack`, `pong` or `error`). */
  async command(frame: Record<string, unknown> & { id: string }): Promise<ServerFrame> {
    const from = this.frames.length;
    this.send(frame);
    return this.next((f) => 'id' in f && f.id === frame.id && f.type !== 'notification', 10_000, from);
  }

  async ack(id: string): Promise<ServerFrame> {
    return this.command({ type: 'ack', id });
  }

  async waitClosed(timeoutMs = 10_000): Promise<number> {
    await Promise.race([
      this.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('socket did not close')), timeoutMs).unref()),
    ]);
    return this.closeCode!;
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING)
      this.socket.close(1000);
    await this.closed;
  }

  terminate(): void {
    this.socket.terminate();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
