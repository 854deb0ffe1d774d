/**
 * A storm client process: holds K users' connections (Herald, raw ws or Socket.IO) and, whenever one
 * ends, opens it again on the SDK's schedule (libs/client/src/backoff.ts: the same initial delay, factor,
 * jitter and cap for every server; a connection open 10 s resets it), so a storm compares servers, not
 * backoff settings. Each connection leaves from its user's loopback address (127.0.1.x), so Nginx's
 * per-address limits see 64 clients, not one.
 *
 * Herald connects as the SDK does by default: the user's JWT in `Sec-WebSocket-Protocol` (ADR 0013); with a
 * tickets URL, as the SDK's `credentials: 'ticket'`: `POST /v1/tickets` with the JWT, then `/ws?ticket=`.
 * A 1013 close whose reason says `retry after N ms` (admission control shedding a handshake) waits exactly
 * N ms and does not count as a failed attempt, as the SDK does; any other refusal waits its backoff delay.
 * Every notification is acked as the SDK does (herald-acks.ts); received and acked ids are kept per user.
 */
import { Agent, request } from 'node:http';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { DEFAULT_BACKOFF, reconnectDelayMs } from '../../libs/client/src/backoff';
import { subprotocolsFor } from '../../libs/client/src/client';
import { userToken } from '../../test/helpers/api';
import type { ParentToStorm, StormStart, StormToParent, StormUser, StormUserResult } from '../lib/ipc';
import { AckAnswer, HeraldAcks, heraldAcksFor } from './herald-acks';

const send = (message: StormToParent) => process.send?.(message);

/** The SDK's default connectTimeoutMs: an attempt without a welcome by then is abandoned. */
const CONNECT_TIMEOUT_MS = 10_000;
const RETRY_AFTER = /retry after (\d+) ms/;

/** Keep-alive sockets for ticket mints, pooled per local address (the agent's key includes it). */
const agent = new Agent({ keepAlive: true, maxFreeSockets: 4 });

let mark = Number.POSITIVE_INFINITY;
let connectedNow = 0;
let affected = 0;
let reconnected = 0;
let receivedTotal = 0;
let ackedTotal = 0;
let dropsAfterReconnect = 0;
const refused: Record<string, number> = {};

/** How a failed attempt failed, for the refusal counts: an HTTP status, an errno code, or the close. */
function classifyError(message: string): string {
  const status = /Unexpected server response: (\d+)/.exec(message);
  if (status) return `HTTP ${status[1]}`;
  return /\b(E[A-Z]{3,})\b/.exec(message)?.[1] ?? message.slice(0, 60);
}

function classifyClose(code: number, reason: string): string {
  if (code === 1013 && RETRY_AFTER.test(reason)) return 'shed (1013)';
  return `close ${code}${reason ? ` ${reason}` : ''}`;
}

/** A ticket for `/ws?ticket=`, minted through Nginx from the user's address; throws the refusal's class. */
function mintTicket(url: string, token: string, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, localAddress, headers: { authorization: `Bearer ${token}` } });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 201) resolve((JSON.parse(body) as { ticket: string }).ticket);
        else reject(new Error(`ticket HTTP ${res.statusCode}`));
      });
    });
    req.on('error', (error) => reject(new Error(`ticket ${classifyError(error.message)}`)));
    req.setTimeout(CONNECT_TIMEOUT_MS, () => req.destroy(new Error('ETIMEDOUT')));
    req.end();
  });
}

interface ServerFrame extends AckAnswer {
  features?: string[];
}

/** One user's connection, reopened on the SDK's schedule whenever it ends. */
class StormUserClient {
  private attempt = 0;
  private openedAt = 0;
  private open = false;
  /** Ended after the mark, and not welcomed since. */
  private waiting = false;
  private reconnectedOnce = false;
  /** Its connection ended after the mark. */
  affected = false;
  reconnectMs = -1;
  private token: string | undefined;
  readonly received = new Map<string, number>();
  readonly acked = new Map<string, number>();
  private firstWelcome: (() => void) | undefined;

  constructor(
    private readonly user: StormUser,
    private readonly start: StormStart,
  ) {}

  get id(): string {
    return this.user.id;
  }

  get isOpen(): boolean {
    return this.open;
  }

  get hasNotifications(): boolean {
    return this.received.size > 0;
  }

  /** Connects, retrying on the schedule; resolves at the first welcome. */
  connectFirst(): Promise<void> {
    return new Promise((resolve) => {
      this.firstWelcome = resolve;
      this.connect();
    });
  }

  private connect(): void {
    // `ended` runs once per attempt, whatever ends it first: a refusal, a close, the timeout.
    let done = false;
    let welcomed = false;
    let cleanup: () => void = () => undefined;
    const timer = setTimeout(() => ended(`no welcome within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
    const welcome = () => {
      clearTimeout(timer);
      welcomed = true;
      this.welcomed();
    };
    const ended = (how: string, retryAfterMs?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      this.ended(welcomed, how, retryAfterMs);
    };
    if (this.start.kind === 'socketio') {
      const socket = io(this.start.url, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        query: { user: this.user.id },
        localAddress: this.user.address,
        timeout: CONNECT_TIMEOUT_MS,
      } as Parameters<typeof io>[1]);
      cleanup = () => socket.disconnect();
      socket.once('connect', welcome);
      socket.once('connect_error', (error: Error & { description?: { message?: string } }) =>
        ended(classifyError(error.description?.message ?? error.message)),
      );
      socket.once('disconnect', (reason) => ended(`disconnect ${reason}`));
      return;
    }
    const openSocket = (url: string, protocols?: string[]) => {
      const options = { perMessageDeflate: false, localAddress: this.user.address };
      const socket = protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options);
      let acks: HeraldAcks | undefined;
      cleanup = () => socket.terminate();
      socket.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
        if (frame.type === 'welcome') {
          if (this.start.kind === 'herald')
            acks = heraldAcksFor(socket, this.tally, this.start.heraldAcks, frame.features);
          welcome();
        } else if (frame.type === 'notification' && frame.id) {
          if (!this.received.has(frame.id)) receivedTotal++;
          this.received.set(frame.id, (this.received.get(frame.id) ?? 0) + 1);
          acks?.received(frame.id);
        } else acks?.answer(frame);
      });
      let failure: string | undefined;
      socket.on('error', (error) => (failure ??= classifyError(error.message)));
      socket.on('close', (code, reasonBuffer) => {
        const reason = reasonBuffer.toString('utf8');
        const retryAfter = code === 1013 ? RETRY_AFTER.exec(reason) : null;
        ended(failure ?? classifyClose(code, reason), retryAfter ? Number(retryAfter[1]) : undefined);
      });
    };
    if (this.start.kind !== 'herald') {
      openSocket(`${this.start.url}?user=${encodeURIComponent(this.user.id)}`);
      return;
    }
    this.token ??= userToken(this.user.id, 3 * 3600);
    if (!this.start.ticketsUrl) {
      openSocket(this.start.url, subprotocolsFor(this.token));
      return;
    }
    mintTicket(this.start.ticketsUrl, this.token, this.user.address).then(
      (ticket) => {
        if (!done) openSocket(`${this.start.url}?ticket=${encodeURIComponent(ticket)}`);
      },
      (error: Error) => ended(error.message),
    );
  }

  private readonly tally = {
    acked: (ids: string[]) => {
      const at = Date.now() - mark;
      for (const id of ids) {
        if (id === '' || this.acked.has(id)) continue;
        this.acked.set(id, at);
        ackedTotal++;
      }
    },
    other: () => undefined,
    takenBack: (ids: string[]) => {
      for (const id of ids) if (this.acked.delete(id)) ackedTotal--;
    },
  };

  private welcomed(): void {
    this.open = true;
    this.openedAt = Date.now();
    connectedNow++;
    if (this.waiting) {
      this.waiting = false;
      this.reconnectedOnce = true;
      reconnected++;
      this.reconnectMs = Date.now() - mark;
    }
    this.firstWelcome?.();
    this.firstWelcome = undefined;
  }

  private ended(wasOpen: boolean, how: string, retryAfterMs: number | undefined): void {
    const now = Date.now();
    if (wasOpen) {
      this.open = false;
      connectedNow--;
      if (now >= mark) {
        if (this.reconnectedOnce) dropsAfterReconnect++;
        else if (!this.waiting) {
          this.waiting = true;
          this.affected = true;
          affected++;
        }
      }
      if (now - this.openedAt >= DEFAULT_BACKOFF.stableAfterMs) this.attempt = 0;
    } else if (now >= mark) refused[how] = (refused[how] ?? 0) + 1;
    let delay: number;
    if (retryAfterMs !== undefined) delay = retryAfterMs;
    else delay = reconnectDelayMs(++this.attempt, DEFAULT_BACKOFF);
    setTimeout(() => this.connect(), delay);
  }

  result(): StormUserResult {
    return { user: this.user.id, received: [...this.received], acked: [...this.acked] };
  }
}

let clients: StormUserClient[] = [];

async function start(message: StormStart): Promise<void> {
  clients = message.users.map((user) => new StormUserClient(user, message));
  let next = 0;
  const worker = async () => {
    while (next < clients.length) await clients[next++]!.connectFirst();
  };
  await Promise.all(Array.from({ length: Math.max(1, message.concurrency) }, worker));
  send({ type: 'connected', connected: connectedNow, errors: Object.keys(refused) });
  setInterval(
    () =>
      send({
        type: 'tick',
        connected: connectedNow,
        affected,
        reconnected,
        received: receivedTotal,
        acked: ackedTotal,
      }),
    250,
  ).unref();
}

process.on('message', (message: ParentToStorm) => {
  switch (message.type) {
    case 'start':
      void start(message);
      return;
    case 'mark':
      mark = message.at;
      return;
    case 'offline':
      send({ type: 'offline', users: clients.filter((c) => !c.isOpen).map((c) => c.id) });
      return;
    case 'collect':
      send({
        type: 'collected',
        reconnectMs: clients.filter((c) => c.affected).map((c) => c.reconnectMs),
        refused,
        dropsAfterReconnect,
        users: clients.filter((c) => c.hasNotifications).map((c) => c.result()),
      });
      return;
    case 'close':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
