/**
 * A load client process: opens K connections of one kind (Herald, raw ws with or without acks,
 * Socket.IO), acks every Herald notification (bench/clients/herald-acks.ts) and, for raw-acks, sends one
 * ack frame per notification, and reports to the parent over IPC, aggregated per message index so that a
 * million deliveries cost a few hundred IPC messages. Receive times use Date.now(), the clock of the
 * publisher's send time `t` in the payload.
 */
import { io, Socket as IoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { CloseCode, retryAfterOf } from '@herald/protocol';
import { userToken } from '../../test/helpers/api';
import type {
  BenchPayload,
  ClientKind,
  ClientStart,
  ClientToParent,
  HeraldAckMode,
  ParentToClient,
  RecvEntry,
} from '../lib/ipc';
import { AckAnswer, AckTally, HeraldAcks, heraldAcksFor } from './herald-acks';

const send = (message: ClientToParent) => process.send?.(message);

/** index → [deliveries, first, last, t] since the last report. */
let pending = new Map<number, [number, number, number, number]>();
let acksOk = 0;
let acksOther = 0;
let lastAckAt = 0;
let closed = 0;
let dirty = false;
const wsSockets: WebSocket[] = [];
const ioSockets: IoSocket[] = [];

function received(payload: BenchPayload | undefined): void {
  if (!payload || typeof payload.i !== 'number') return;
  const now = Date.now();
  const entry = pending.get(payload.i);
  if (entry) {
    entry[0]++;
    entry[2] = now;
  } else pending.set(payload.i, [1, now, now, payload.t]);
  dirty = true;
}

function report(): void {
  const recv: RecvEntry[] = [];
  for (const [i, [count, first, last, t]] of pending) recv.push([i, count, first, last, t]);
  pending = new Map();
  dirty = false;
  send({ type: 'report', recv, acksOk, acksOther, lastAckAt, closed });
}
setInterval(() => {
  if (dirty) report();
}, 20).unref();
setInterval(report, 500).unref();

const tally: AckTally = {
  acked(ids) {
    acksOk += ids.length;
    lastAckAt = Date.now();
    dirty = true;
  },
  other(n) {
    acksOther += n;
    dirty = true;
  },
  takenBack(ids) {
    acksOk -= ids.length;
    dirty = true;
  },
};

interface ServerFrame extends AckAnswer {
  attempt?: number;
  payload?: BenchPayload;
  features?: string[];
}

/** The query that names the user: Herald's JWT, or the baselines' plain `user`. */
function userQuery(kind: ClientKind, user: string): string {
  return kind === 'herald' ? `token=${userToken(user, 3 * 3600)}` : `user=${encodeURIComponent(user)}`;
}

function openWs(
  kind: Exclude<ClientKind, 'socketio'>,
  url: string,
  userQuery: string,
  mode: HeraldAckMode,
): Promise<void> {
  const full = `${url}?${userQuery}`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(full, { perMessageDeflate: false });
    let acks: HeraldAcks | undefined;
    let welcomed = false;
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
      switch (frame.type) {
        case 'welcome':
          welcomed = true;
          if (kind === 'herald') acks = heraldAcksFor(socket, tally, mode, frame.features);
          wsSockets.push(socket);
          resolve();
          return;
        case 'notification':
          if (frame.attempt === undefined || frame.attempt === 1) received(frame.payload);
          if (acks && frame.id) acks.received(frame.id);
          else if (kind === 'raw-acks' && frame.id) socket.send(`{"type":"ack","id":"${frame.id}"}`);
          return;
        case 'ack':
        case 'acks':
        case 'error':
          acks?.answer(frame);
          return;
        default:
          return;
      }
    });
    socket.on('error', (error) => {
      if (!welcomed) reject(error);
    });
    socket.on('close', (code, reason) => {
      if (welcomed) closed++;
      else if (code === CloseCode.TryAgainLater) reject(new ShedError(reason.toString('utf8')));
      else reject(new Error(`closed ${code} before welcome`));
    });
  });
}

/** A connect the server shed before its welcome (1013 `retry after <n> ms`): come back after that delay. */
class ShedError extends Error {
  readonly retryAfterMs: number;

  constructor(reason: string) {
    super(`closed 1013 before welcome: ${reason}`);
    this.retryAfterMs = retryAfterOf(reason) ?? 1000;
  }
}

/** A shed connect is tried again after its delay, as the SDK does, this many times at most. */
const SHED_RETRIES = 10;

/** openWs, coming back after the delay a shedding server asks for (the SDK honours it the same way). */
async function openWsHonouringSheds(
  kind: Exclude<ClientKind, 'socketio'>,
  url: string,
  userQuery: string,
  mode: HeraldAckMode,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openWs(kind, url, userQuery, mode);
    } catch (error) {
      if (!(error instanceof ShedError) || attempt >= SHED_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs));
    }
  }
}

function openIo(url: string, user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      query: { user },
      timeout: 60_000,
    });
    socket.on('notification', (payload: BenchPayload) => received(payload));
    socket.once('connect', () => {
      ioSockets.push(socket);
      resolve();
    });
    socket.once('connect_error', reject);
    socket.on('disconnect', () => closed++);
  });
}

async function start(message: ClientStart): Promise<void> {
  let connected = 0;
  let failed = 0;
  const errors: string[] = [];
  // Before the clock starts: a user's app holds its token before it connects, and the JWT signing
  // (Herald's only) would otherwise take this process's CPU from the handshakes it measures.
  const queries = message.kind === 'socketio' ? [] : message.users.map((user) => userQuery(message.kind, user));
  const startedAt = Date.now();
  let next = 0;
  const progress = setInterval(() => send({ type: 'connecting', connected, failed }), 1000);
  const worker = async () => {
    while (next < message.users.length) {
      const index = next++;
      const url = message.urls[index % message.urls.length]!;
      try {
        if (message.kind === 'socketio') await openIo(url, message.users[index]!);
        else await openWsHonouringSheds(message.kind, url, queries[index]!, message.heraldAcks);
        connected++;
      } catch (error) {
        failed++;
        if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, message.concurrency) }, worker));
  clearInterval(progress);
  send({ type: 'connected', connected, failed, startedAt, doneAt: Date.now(), errors });
}

process.on('message', (message: ParentToClient) => {
  switch (message.type) {
    case 'start':
      void start(message);
      return;
    case 'flush':
      report();
      send({ type: 'flushed' });
      return;
    case 'close':
      for (const socket of wsSockets) socket.terminate();
      for (const socket of ioSockets) socket.disconnect();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
