import { randomUUID } from 'node:crypto';
import type { StreamCloseEvent, TokenResponse } from '@herald/protocol';
import WebSocket from 'ws';
import { HeraldClient } from '../../libs/client/src';
import { publish, request, userToken } from '../helpers/api';
import { Edge } from '../helpers/edge';
import { PrivatePostgres } from '../helpers/private-postgres';
import { rawConnect } from '../helpers/raw-ws';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { Replica } from '../helpers/replica';
import { readEventStream } from '../helpers/sse';
import { waitFor } from '../helpers/wait';

const user = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

/**
 * New connections while PostgreSQL is down: the server is fine, a store is not, so the answer is 1013 Try
 * Again Later (never 1011, which says the server has a bug), and the SDK retries with backoff on the same
 * transport. Through Nginx too: the upgrade itself succeeds, so Nginx does not take the replicas for broken.
 */
describe('New connections while PostgreSQL is down (2 replicas behind Nginx, private PostgreSQL)', () => {
  let pg: PrivatePostgres;
  let edge: Edge;
  const prefix = testRedisPrefix('pgdownws');
  const replicas: Replica[] = [];
  const clients: HeraldClient[] = [];
  let pgDown = false;

  beforeAll(async () => {
    pg = await PrivatePostgres.create();
    for (const id of ['pgdownws-r1', 'pgdownws-r2']) {
      replicas.push(await Replica.create(id, { databaseUrl: pg.url, redisPrefix: prefix }));
    }
    await Promise.all(replicas.map((r) => r.start()));
    edge = await Edge.start(replicas.map((r) => r.port));
  }, 90_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    if (pgDown) await pg.startAsync();
    await edge?.stop();
    await Promise.all(replicas.map((r) => r.stop().catch(() => undefined)));
    await pg?.destroy();
    await deleteRedisPrefix(prefix);
  }, 30_000);

  it('closes new WebSockets and SSE streams with 1013 (never 1011), at a replica and through Nginx, which keeps both replicas in service; the SDK retries with backoff on the WebSocket and connects once PostgreSQL is back', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    await pg.stopAsync();
    pgDown = true;

    // Raw upgrades at each replica and through Nginx (more than its max_fails=2 per replica): each one is
    // accepted, then closed with 1013 before any `welcome`.
    for (const url of [r1.ws, r2.ws, edge.ws, edge.ws, edge.ws, edge.ws, edge.ws]) {
      const ws = await rawConnect(url, { headers: { authorization: `Bearer ${userToken(user('raw'))}` } });
      expect(await ws.closed(10_000)).toEqual({ code: 1013, reason: 'setup failed, reconnect' });
      expect(ws.messages()).toEqual([]);
      ws.destroy();
    }

    // The SSE fallback says the same, in its `close` event.
    const stream = await fetch(`${edge.http}/v1/stream`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${userToken(user('sse'))}` },
    });
    expect(stream.status).toBe(200);
    let closeEvent: StreamCloseEvent | undefined;
    const state = readEventStream(stream, (event, data) => {
      if (event === 'close') closeEvent = JSON.parse(data) as StreamCloseEvent;
    });
    await waitFor('the stream to end', () => state.ended, 10_000);
    expect(closeEvent).toMatchObject({ code: 1013, reason: 'setup failed, reconnect' });

    // Nginx counted none of it against the replicas: a request that needs no database still reaches one.
    const minted = await request<TokenResponse>(edge.http, 'POST', '/v1/tokens', {
      body: { userId: user('minted'), ttlSeconds: 600 },
    });
    expect(minted.status).toBe(201);

    // The SDK, through Nginx: every attempt ends in 1013 and is retried after a longer delay, on the WebSocket
    // (more attempts than fallbackAfterFailures, 3, would have moved a failing upgrade to SSE).
    const carol = user('carol');
    const reconnects: { delayMs: number; code: number; transport: string }[] = [];
    const client = new HeraldClient({
      url: edge.ws,
      token: userToken(carol),
      WebSocket,
      backoff: { initialMs: 200, maxMs: 1600 },
      random: () => 1,
    });
    clients.push(client);
    client.on('reconnecting', ({ delayMs, code, transport }) => reconnects.push({ delayMs, code, transport }));
    const received: string[] = [];
    client.onNotification((n) => {
      received.push(n.id);
    });
    const opened = new Promise<string>((resolve) => client.on('open', ({ transport }) => resolve(transport)));
    client.connect();
    await waitFor('four retries of the SDK', () => reconnects.length >= 4, 20_000);
    expect(reconnects.slice(0, 4)).toEqual(
      [200, 400, 800, 1600].map((delayMs) => ({ delayMs, code: 1013, transport: 'websocket' })),
    );

    await pg.startAsync();
    pgDown = false;
    expect(await opened).toBe('websocket');
    expect(reconnects.every((r) => r.code === 1013)).toBe(true);
    const { id } = await publish(edge.http, { to: { users: [carol] }, event: 'after.outage' });
    await waitFor('the notification to reach the SDK', () => received.includes(id), 10_000);
  }, 90_000);
});
