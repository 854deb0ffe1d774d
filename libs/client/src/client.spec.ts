import type { ProtocolFeature } from '@herald/protocol';
import { retryAfterReason, WS_BEARER_PREFIX, WS_SUBPROTOCOL } from '@herald/protocol';
import { client, FakeSocket, jwt, notification, settle } from '../test/fake-server.js';
import { reconnectDelayMs, DEFAULT_BACKOFF } from './backoff.js';
import { BEARER_PREFIX, HeraldClientOptions, Notification, ReadyState, SUBPROTOCOL } from './client.js';
import { RecentIds } from './dedup.js';
import { SseParser, SseEvent } from './sse.js';
import { tokenExpiresAtMs } from './token.js';

beforeEach(() => {
  jest.useFakeTimers();
  FakeSocket.all = [];
});

afterEach(() => {
  jest.useRealTimers();
});

describe('reconnectDelayMs', () => {
  it('doubles from about 1 s, stays within [ceiling/2, ceiling], and caps at 30 s', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      expect(reconnectDelayMs(attempt, DEFAULT_BACKOFF, () => 0)).toBe(ceiling / 2);
      expect(reconnectDelayMs(attempt, DEFAULT_BACKOFF, () => 1)).toBe(ceiling);
      for (let i = 0; i < 50; i++) {
        const delay = reconnectDelayMs(attempt);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
    expect(reconnectDelayMs(100, DEFAULT_BACKOFF, () => 1)).toBe(30_000);
  });

  it('spreads a crowd: 1000 clients at the same attempt do not pick the same instant', () => {
    const delays = Array.from({ length: 1000 }, () => reconnectDelayMs(6));
    expect(new Set(delays).size).toBeGreaterThan(900);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(12_000);
  });
});

describe('RecentIds', () => {
  it('forgets the oldest id beyond its capacity', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
    expect([ids.has('a'), ids.has('b'), ids.has('d'), ids.size]).toEqual([false, true, true, 3]);
  });
});

describe('SseParser', () => {
  it('parses events split across chunks, with CRLF, comments, ids and multi-line data', () => {
    const events: SseEvent[] = [];
    let comments = 0;
    const parser = new SseParser(
      (e) => events.push(e),
      () => comments++,
    );
    parser.push('retry: 1000\n\n: ping\n\nid: 7\nevent: notifi');
    parser.push('cation\r\ndata: {"a":1}\r\n\r');
    parser.push('\ndata: x\ndata: y\n\n');
    expect(events).toEqual([
      { event: 'notification', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'x\ny', id: '7' },
    ]);
    expect(comments).toBe(1);
  });
});

describe('tokenExpiresAtMs', () => {
  it('reads exp of a JWT and gives up on anything else', () => {
    expect(tokenExpiresAtMs(jwt(1_800_000_000))).toBe(1_800_000_000_000);
    expect(tokenExpiresAtMs('opaque')).toBeUndefined();
    expect(tokenExpiresAtMs('a.!!!.c')).toBeUndefined();
  });
});

describe('HeraldClient', () => {
  it('refuses options it cannot work with', () => {
    expect(() => client({ url: 'http://herald.test/ws' })).toThrow(/ws:\/\//);
    expect(() => client({ url: '/ws' })).toThrow(/absolute/);
    expect(() => client({ token: undefined })).toThrow(/token/);
  });

  it('connects with the token in the query and reports its states', async () => {
    const c = client();
    const states: number[] = [];
    c.on('state', (s) => states.push(s));
    const opened = jest.fn();
    c.on('open', opened);
    c.connect();
    await settle();
    expect(new URL(FakeSocket.last.url).searchParams.get('token')).toBe('t0');
    expect(c.readyState).toBe(ReadyState.CONNECTING);
    FakeSocket.last.accept();
    expect(c.readyState).toBe(ReadyState.OPEN);
    expect(opened).toHaveBeenCalledWith(expect.objectContaining({ transport: 'websocket', replicaId: 'r1' }));
    c.close();
    expect(c.readyState).toBe(ReadyState.CLOSED);
    expect(states).toEqual([ReadyState.CONNECTING, ReadyState.OPEN, ReadyState.CLOSING, ReadyState.CLOSED]);
    expect(FakeSocket.last.closedWith).toEqual({ code: 1000, reason: 'client closed' });
  });

  it('reconnects with growing, jittered delays and resets them after a stable connection', async () => {
    const c = client({ random: () => 1, transport: 'websocket' });
    const delays: number[] = [];
    c.on('reconnecting', (e) => delays.push(e.delayMs));
    c.connect();
    await settle();
    for (let i = 0; i < 6; i++) {
      FakeSocket.last.refuse();
      await settle(delays[delays.length - 1]);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000]);
    FakeSocket.last.accept();
    await settle(DEFAULT_BACKOFF.stableAfterMs);
    FakeSocket.last.serverClose(1001, 'server shutting down');
    expect(delays[delays.length - 1]).toBe(1000);
    // A connection that drops before it is stable keeps climbing.
    await settle(1000);
    FakeSocket.last.accept();
    await settle(100);
    FakeSocket.last.serverClose(1011);
    expect(delays[delays.length - 1]).toBe(2000);
    c.close();
  });

  it('does not reconnect after close(), nor after a close the protocol cannot recover from', async () => {
    const c = client();
    const closed = jest.fn();
    c.on('closed', closed);
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.serverClose(1002, 'protocol error');
    expect(closed).toHaveBeenCalledWith({ code: 1002, reason: 'protocol error' });
    await settle(60_000);
    expect(FakeSocket.all).toHaveLength(1);

    const d = client();
    d.connect();
    await settle();
    FakeSocket.last.accept();
    d.close();
    await settle(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(d.readyState).toBe(ReadyState.CLOSED);
  });

  it('by default carries the token in Sec-WebSocket-Protocol: one request per attempt, nothing in the URL', async () => {
    expect([SUBPROTOCOL, BEARER_PREFIX]).toEqual([WS_SUBPROTOCOL, WS_BEARER_PREFIX]);
    const fakeFetch = jest.fn(async () => new Response('{}', { status: 500 }));
    const token = jwt(Math.floor(Date.now() / 1000) + 3600);
    const c = client({ credentials: undefined, token, fetch: fakeFetch as unknown as typeof fetch });
    c.connect();
    await settle();
    expect(FakeSocket.last.url).toBe('ws://herald.test/ws');
    expect(FakeSocket.last.protocols).toEqual(['herald.v1', `herald.bearer.${token}`]);
    // Refused (shed for load, say): the next attempt carries the token the same way, still with no mint.
    FakeSocket.last.refuse();
    await settle(2000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last.protocols).toEqual(['herald.v1', `herald.bearer.${token}`]);
    FakeSocket.last.accept();
    expect(c.readyState).toBe(ReadyState.OPEN);
    expect(fakeFetch).not.toHaveBeenCalled();
    c.close();
  });

  it('falls back to tickets, saying so, for a token no subprotocol entry can hold', async () => {
    const fakeFetch = jest.fn(
      async () =>
        new Response(JSON.stringify({ ticket: 'tk-1', expiresAt: '2026-12-05T00:00:30.000Z' }), {
          status: 201,
          headers: { 'Content-Type': 'application/json' },
        }),
    );
    const errors: string[] = [];
    const c = client({
      credentials: undefined,
      token: 'opaque/base64+token==',
      fetch: fakeFetch as unknown as typeof fetch,
    });
    c.on('error', (e) => errors.push(e.message));
    c.connect();
    await settle();
    expect(errors).toEqual(['the token cannot ride in Sec-WebSocket-Protocol: connecting with tickets']);
    expect(FakeSocket.last.protocols).toBeUndefined();
    expect(new URL(FakeSocket.last.url).searchParams.get('ticket')).toBe('tk-1');
    c.close();
  });

  it('mints a one-time ticket for every WebSocket attempt, so the token never rides in the URL', async () => {
    let minted = 0;
    const requests: { url: string; init: RequestInit }[] = [];
    const fakeFetch = jest.fn(async (url: string, init?: RequestInit) => {
      requests.push({ url, init: init ?? {} });
      return new Response(JSON.stringify({ ticket: `tk-${++minted}`, expiresAt: '2026-12-05T00:00:30.000Z' }), {
        status: 201,
        headers: { 'Content-Type': 'application/json' },
      });
    });
    const c = client({ credentials: 'ticket', fetch: fakeFetch as unknown as typeof fetch });
    c.connect();
    await settle();
    expect(requests[0]!.url).toBe('http://herald.test/v1/tickets');
    expect(requests[0]!.init.method).toBe('POST');
    expect((requests[0]!.init.headers as Record<string, string>).Authorization).toBe('Bearer t0');
    const first = new URL(FakeSocket.last.url);
    expect(first.searchParams.get('ticket')).toBe('tk-1');
    expect(first.searchParams.has('token')).toBe(false);
    // Refused (shed for load, say): the next attempt has a fresh ticket.
    FakeSocket.last.refuse();
    await settle(2000);
    expect(new URL(FakeSocket.last.url).searchParams.get('ticket')).toBe('tk-2');
    c.close();
  });

  it('connects with ?token= to a Herald without tickets (its 404), saying so once; a proxy 404 is retried', async () => {
    const proxy404 = jest.fn(async () => new Response('<html>404 Not Found</html>', { status: 404 }));
    const behindProxy = client({ credentials: 'ticket', fetch: proxy404 as unknown as typeof fetch });
    const reconnecting = jest.fn();
    behindProxy.on('reconnecting', reconnecting);
    behindProxy.connect();
    await settle();
    expect(reconnecting).toHaveBeenCalledWith(expect.objectContaining({ code: 1011 }));
    expect(FakeSocket.all).toHaveLength(0);
    behindProxy.close();

    const notFound = { error: { code: 'NOT_FOUND', message: 'Cannot POST /v1/tickets', requestId: 'r' } };
    const fakeFetch = jest.fn(async () => new Response(JSON.stringify(notFound), { status: 404 }));
    const c = client({ credentials: 'ticket', fetch: fakeFetch as unknown as typeof fetch });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    c.connect();
    await settle();
    expect(new URL(FakeSocket.last.url).searchParams.get('token')).toBe('t0');
    FakeSocket.last.refuse();
    await settle(2000);
    expect(fakeFetch).toHaveBeenCalledTimes(1);
    expect(errors).toEqual([
      'no ticket endpoint at http://herald.test/v1/tickets (404): the token goes in the URL; upgrade the server',
    ]);
    c.close();
  });

  it('treats a refused ticket as a refused token: a fresh token, and no step towards the SSE fallback', async () => {
    const statuses = [401, 201, 401];
    const fakeFetch = jest.fn(async () => {
      const status = statuses.shift() ?? 201;
      return status === 201
        ? new Response(JSON.stringify({ ticket: 'ok', expiresAt: '' }), { status })
        : new Response(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'token expired' } }), { status });
    });
    const getToken = jest.fn(async () => 'fresh');
    const c = client({ credentials: 'ticket', getToken, fetch: fakeFetch as unknown as typeof fetch });
    const reconnecting = jest.fn();
    const closed = jest.fn();
    c.on('reconnecting', reconnecting);
    c.on('closed', closed);
    c.connect();
    await settle();
    expect(reconnecting).toHaveBeenCalledWith(
      expect.objectContaining({ code: 1008, reason: 'ticket refused (401): token expired', transport: 'websocket' }),
    );
    await settle(2000);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(new URL(FakeSocket.last.url).searchParams.get('ticket')).toBe('ok');
    FakeSocket.last.refuse();
    await settle(5000);
    // A second refusal in a row after a fresh token: as with a refused upgrade, the token cannot be fixed.
    expect(closed).toHaveBeenCalledWith({ code: 1008, reason: 'ticket refused (401): token expired' });
  });

  it('fetches a fresh token after a 1008 close, and stops when a fresh one does not help', async () => {
    let issued = 0;
    const getToken = jest.fn(async () => `fresh-${++issued}`);
    const c = client({ getToken });
    const closed = jest.fn();
    c.on('closed', closed);
    c.connect();
    await settle();
    expect(getToken).not.toHaveBeenCalled();
    FakeSocket.last.accept();
    FakeSocket.last.serverClose(1008, 'token expired');
    await settle(1000);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(new URL(FakeSocket.last.url).searchParams.get('token')).toBe('fresh-1');
    FakeSocket.last.accept();
    FakeSocket.last.serverClose(1008, 'refused');
    expect(closed).toHaveBeenCalledWith({ code: 1008, reason: 'refused' });

    const withoutCallback = client();
    const closedToo = jest.fn();
    withoutCallback.on('closed', closedToo);
    withoutCallback.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.serverClose(1008, 'token expired');
    expect(closedToo).toHaveBeenCalledWith({ code: 1008, reason: 'token expired' });
  });

  it('retries a 1008 for a server limit with backoff, without a fresh token and without giving up', async () => {
    const getToken = jest.fn(async () => 'fresh');
    const c = client({ token: 'first', getToken });
    const closed = jest.fn();
    c.on('closed', closed);
    c.connect();
    await settle();
    for (const reason of [
      'too many connections for this user (20)',
      'rate limit exceeded',
      'too many connections for this user (20)',
    ]) {
      FakeSocket.last.accept();
      const sockets = FakeSocket.all.length;
      FakeSocket.last.serverClose(1008, reason);
      // The next attempt comes after the backoff delay (seconds), with the same token.
      for (let waited = 0; FakeSocket.all.length === sockets && waited < 10_000; waited += 100) await settle(100);
      expect(new URL(FakeSocket.last.url).searchParams.get('token')).toBe('first');
    }
    expect(closed).not.toHaveBeenCalled();
    expect(getToken).not.toHaveBeenCalled();
    expect(FakeSocket.all.length).toBeGreaterThanOrEqual(4);
    c.close();
  });

  it('retries 1013 Try Again Later with growing backoff on the same token, and never falls back to SSE for it', async () => {
    const getToken = jest.fn(async () => 'fresh');
    const c = client({ token: 'first', getToken, random: () => 1 });
    const reconnects: { delayMs: number; code: number }[] = [];
    c.on('reconnecting', ({ delayMs, code }) => reconnects.push({ delayMs, code }));
    const closed = jest.fn();
    c.on('closed', closed);
    c.connect();
    await settle();
    // What a store outage looks like: the upgrade goes through, and the server closes before `welcome`.
    // More times in a row than fallbackAfterFailures (3).
    for (let i = 0; i < 5; i++) {
      FakeSocket.last.open();
      FakeSocket.last.serverClose(1013, 'setup failed, reconnect');
      await settle(reconnects[reconnects.length - 1]!.delayMs);
    }
    expect(reconnects).toEqual([1000, 2000, 4000, 8000, 16000].map((delayMs) => ({ delayMs, code: 1013 })));
    expect(c.transport).toBe('websocket');
    expect(getToken).not.toHaveBeenCalled();
    expect(new URL(FakeSocket.last.url).searchParams.get('token')).toBe('first');
    // A 1013 also ends a run of refused upgrades: two refusals, a 1013, two more refusals stay on the WebSocket.
    for (const close of [1006, 1006, 1013, 1006, 1006]) {
      if (close === 1013) FakeSocket.last.open();
      FakeSocket.last.serverClose(close);
      await settle(reconnects[reconnects.length - 1]!.delayMs);
    }
    expect(c.transport).toBe('websocket');
    FakeSocket.last.accept();
    expect(c.readyState).toBe(ReadyState.OPEN);
    expect(closed).not.toHaveBeenCalled();
    c.close();
  });

  it('comes back after the delay a shedding replica asks for (1013 `retry after N ms`), without growing its backoff', async () => {
    const c = client({ token: 'first', random: () => 1 });
    const reconnects: { delayMs: number; attempt: number }[] = [];
    c.on('reconnecting', ({ delayMs, attempt }) => reconnects.push({ delayMs, attempt }));
    c.connect();
    await settle();
    for (const reason of [
      retryAfterReason(2400),
      retryAfterReason(700),
      'setup failed, reconnect',
      retryAfterReason(90_000),
    ]) {
      FakeSocket.last.open();
      FakeSocket.last.serverClose(1013, reason);
      await settle(reconnects[reconnects.length - 1]!.delayMs);
    }
    // The server's delays, capped at the backoff's largest (30 s); only the store failure counts as an attempt.
    expect(reconnects).toEqual([
      { delayMs: 2400, attempt: 0 },
      { delayMs: 700, attempt: 0 },
      { delayMs: 1000, attempt: 1 },
      { delayMs: 30_000, attempt: 1 },
    ]);
    expect(FakeSocket.all.length).toBe(5);
    c.close();
  });

  it('comes back after the delay of a shed SSE stream (503 `retry after N ms`)', async () => {
    const fakeFetch = jest.fn(
      async () =>
        new Response(JSON.stringify({ error: { code: 'UNAVAILABLE', message: retryAfterReason(1800) } }), {
          status: 503,
          headers: { 'Content-Type': 'application/json', 'Retry-After': '2' },
        }),
    );
    const c = client({ transport: 'sse', fetch: fakeFetch as unknown as typeof fetch, random: () => 1 });
    const reconnects: { delayMs: number; code: number }[] = [];
    c.on('reconnecting', ({ delayMs, code }) => reconnects.push({ delayMs, code }));
    c.connect();
    await settle();
    await settle(1800);
    expect(reconnects).toEqual([
      { delayMs: 1800, code: 1013 },
      { delayMs: 1800, code: 1013 },
    ]);
    c.close();
  });

  it('takes a 503 refusal of the SSE stream as 1013, and retries it with backoff', async () => {
    const fakeFetch = jest.fn(
      async () =>
        new Response(JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'server shutting down, reconnect' } }), {
          status: 503,
          headers: { 'Content-Type': 'application/json', 'Retry-After': '1' },
        }),
    );
    const c = client({ transport: 'sse', fetch: fakeFetch as unknown as typeof fetch, random: () => 1 });
    const reconnects: { delayMs: number; code: number }[] = [];
    c.on('reconnecting', ({ delayMs, code }) => reconnects.push({ delayMs, code }));
    c.connect();
    await settle();
    await settle(1000);
    expect(reconnects).toEqual([
      { delayMs: 1000, code: 1013 },
      { delayMs: 2000, code: 1013 },
    ]);
    expect(fakeFetch).toHaveBeenCalledTimes(2);
    c.close();
  });

  it('refreshes a token near its expiry in-band, without reconnecting', async () => {
    jest.setSystemTime(new Date('2026-11-25T00:00:00Z'));
    const now = Math.floor(Date.now() / 1000);
    const getToken = jest.fn(async () => jwt(now + 600));
    const c = client({ token: jwt(now + 120), getToken, tokenRefreshBeforeMs: 60_000 });
    c.connect();
    await settle();
    FakeSocket.last.accept(3_600_000);
    await settle(59_000);
    expect(FakeSocket.last.sentOfType('auth')).toHaveLength(0);
    await settle(1_500);
    const [auth] = FakeSocket.last.sentOfType('auth');
    expect(auth).toMatchObject({ type: 'auth', token: jwt(now + 600) });
    FakeSocket.last.receive({ type: 'ack', id: auth!.id as string, status: 'ok' });
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
    c.close();
  });

  it('hands each notification to the handler once, across reconnects, and acks every copy', async () => {
    const c = client();
    const seen: string[] = [];
    c.onNotification((n) => {
      seen.push(n.id);
    });
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(1), notification(2));
    await settle(5);
    FakeSocket.last.serverClose(1006);
    await settle(1000);
    // Replay on the new connection: the ack of 2 was lost, so it comes again.
    FakeSocket.last.accept();
    FakeSocket.last.receive({ ...notification(2), attempt: 2 }, notification(3));
    await settle(5);
    expect(seen).toEqual([notification(1).id, notification(2).id, notification(3).id]);
    expect(FakeSocket.last.ackedIds()).toEqual([notification(2).id, notification(3).id]);
    c.close();
  });

  it('delivers a burst in seq order, one handler call at a time, and acks only when the handler is done', async () => {
    const c = client();
    const order: number[] = [];
    let running = 0;
    let overlap = false;
    c.onNotification(async (n: Notification) => {
      running++;
      overlap ||= running > 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
      order.push(n.seq);
      running--;
    });
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(5), notification(3), notification(4));
    await settle(50);
    expect(FakeSocket.last.ackedIds()).toHaveLength(0);
    await settle(300);
    expect(order).toEqual([3, 4, 5]);
    expect(overlap).toBe(false);
    expect(FakeSocket.last.ackedIds()).toEqual([3, 4, 5].map((s) => notification(s).id));
    c.close();
  });

  it('sends the acks of a burst handled at once in one acks frame', async () => {
    const c = client();
    c.onNotification(() => undefined);
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(1), notification(2), notification(3));
    await settle(5);
    expect(FakeSocket.last.sentOfType('acks')).toEqual([
      { type: 'acks', ids: [1, 2, 3].map((s) => notification(s).id) },
    ]);
    expect(FakeSocket.last.sentOfType('ack')).toHaveLength(0);
    c.close();
  });

  it('sends a held ack after 50 ms even while the next handler is still running', async () => {
    const c = client();
    c.onNotification(async (n: Notification) => {
      if (n.seq === 2) await new Promise((resolve) => setTimeout(resolve, 10_000));
    });
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(1), notification(2));
    await settle();
    expect(FakeSocket.last.ackedIds()).toHaveLength(0);
    await settle(50);
    expect(FakeSocket.last.ackedIds()).toEqual([notification(1).id]);
    await settle(10_000);
    expect(FakeSocket.last.ackedIds()).toEqual([notification(1).id, notification(2).id]);
    c.close();
  });

  it('does not ack when the handler fails, and gives it another go on redelivery', async () => {
    const c = client();
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    let calls = 0;
    c.onNotification(() => {
      calls++;
      if (calls === 1) throw new Error('boom');
    });
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(1));
    await settle();
    expect(FakeSocket.last.ackedIds()).toHaveLength(0);
    expect(errors[0]).toMatch(/handler failed.*boom/);
    FakeSocket.last.receive({ ...notification(1), attempt: 2 });
    await settle(5);
    expect(calls).toBe(2);
    expect(FakeSocket.last.ackedIds()).toHaveLength(1);
    c.close();
  });

  it('in manual mode acks only when the app says so, and queues acks made while disconnected', async () => {
    const c = client({ ackMode: 'manual' });
    const received: Notification[] = [];
    c.onNotification((n) => {
      received.push(n);
    });
    c.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.receive(notification(1));
    await settle();
    expect(FakeSocket.last.ackedIds()).toHaveLength(0);
    FakeSocket.last.serverClose(1006);
    received[0]!.ack();
    await settle(1000);
    FakeSocket.last.accept();
    expect(FakeSocket.last.ackedIds()).toEqual([notification(1).id]);
    c.close();
  });

  it('treats a silent connection as dead: pings at half the heartbeat, reconnects past heartbeat + margin', async () => {
    const c = client({ heartbeatMarginMs: 500 });
    const reconnecting = jest.fn();
    c.on('reconnecting', reconnecting);
    c.connect();
    await settle();
    const first = FakeSocket.last;
    first.accept(1000);
    await settle(600);
    expect(first.sentOfType('ping').length).toBeGreaterThan(0);
    // Answered: stays up.
    first.receive({ type: 'pong', timestamp: '' });
    await settle(600);
    first.receive({ type: 'pong', timestamp: '' });
    await settle(600);
    expect(reconnecting).not.toHaveBeenCalled();
    // Silence beyond 1000 + 500 ms.
    await settle(1600);
    expect(reconnecting).toHaveBeenCalledWith(
      expect.objectContaining({ reason: expect.stringMatching(/heartbeat/) as unknown }),
    );
    expect(first.closedWith?.code).toBe(4000);
    c.close();
  });

  it('gives up on a connection that never says welcome', async () => {
    const c = client({ connectTimeoutMs: 2000 });
    const reconnecting = jest.fn();
    c.on('reconnecting', reconnecting);
    c.connect();
    await settle(2001);
    expect(reconnecting).toHaveBeenCalledWith(
      expect.objectContaining({ reason: expect.stringMatching(/welcome/) as unknown }),
    );
    c.close();
  });

  it('queues subscribes made while disconnected and subscribes every topic again after a reconnect', async () => {
    const c = client({ topics: ['news'] });
    c.connect();
    const subscribed = c.subscribe('orders');
    await settle();
    FakeSocket.last.accept();
    const first = FakeSocket.last.sentOfType('subscribe');
    expect(first.map((f) => f.channel)).toEqual(['news', 'orders']);
    FakeSocket.last.receive({ type: 'ack', id: first[1]!.id as string, status: 'ok' });
    await expect(subscribed).resolves.toBeUndefined();
    FakeSocket.last.serverClose(1001);
    await settle(1000);
    FakeSocket.last.accept();
    expect(FakeSocket.last.sentOfType('subscribe').map((f) => f.channel)).toEqual(['news', 'orders']);
    void c.unsubscribe('news');
    expect(FakeSocket.last.sentOfType('unsubscribe').map((f) => f.channel)).toEqual(['news']);
    c.close();
  });

  it('stops for good when close() is called while connecting, waiting for a token, or from a listener', async () => {
    let release: (token: string) => void = () => undefined;
    const slow = client({ token: undefined, getToken: () => new Promise<string>((resolve) => (release = resolve)) });
    slow.connect();
    await settle();
    slow.close();
    release('late');
    await settle(60_000);
    expect(FakeSocket.all).toHaveLength(0);
    expect(slow.readyState).toBe(ReadyState.CLOSED);

    const connecting = client();
    connecting.connect();
    await settle();
    connecting.close();
    expect(FakeSocket.last.closedWith?.code).toBe(4000);
    expect(connecting.readyState).toBe(ReadyState.CLOSED);

    const fromListener = client({ transport: 'websocket' });
    fromListener.on('reconnecting', () => fromListener.close());
    fromListener.connect();
    await settle();
    FakeSocket.last.refuse();
    await settle(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(fromListener.readyState).toBe(ReadyState.CLOSED);

    // And it can be started again.
    fromListener.connect();
    await settle();
    expect(FakeSocket.all).toHaveLength(3);
    fromListener.close();
    expect(() => fromListener.close(1001)).not.toThrow();
    expect(() => client().close(1001)).not.toThrow();
  });

  it('does not take a late timer tick (a throttled background tab) for a dead server', async () => {
    const c = client({ heartbeatMarginMs: 500 });
    const reconnecting = jest.fn();
    c.on('reconnecting', reconnecting);
    c.connect();
    await settle();
    FakeSocket.last.accept(1000);
    // Timers frozen for 60 s, then one late tick: it pings instead of giving up.
    jest.setSystemTime(Date.now() + 60_000);
    await settle(250);
    expect(reconnecting).not.toHaveBeenCalled();
    expect(FakeSocket.last.sentOfType('ping').length).toBeGreaterThan(0);
    FakeSocket.last.receive({ type: 'pong', timestamp: '' });
    await settle(500);
    expect(reconnecting).not.toHaveBeenCalled();
    c.close();
  });

  it('does not spin on a long-lived or a short-lived token', async () => {
    jest.setSystemTime(new Date('2026-11-25T00:00:00Z'));
    const now = Math.floor(Date.now() / 1000);
    const getToken = jest.fn(async () => jwt(now + 365 * 86400));
    const long = client({ token: jwt(now + 365 * 86400), getToken });
    long.connect();
    await settle();
    FakeSocket.last.accept(3_600_000);
    await settle(10_000);
    expect(getToken).not.toHaveBeenCalled();
    long.close();

    const shortLived = jest.fn(async () => jwt(Math.floor(Date.now() / 1000) + 30));
    // 30 s to live, with refreshBeforeMs 60 s: refreshed half-way, not every second.
    const short = client({
      token: jwt(Math.floor(Date.now() / 1000) + 30),
      getToken: shortLived,
      tokenRefreshBeforeMs: 60_000,
    });
    short.connect();
    await settle();
    FakeSocket.last.accept(3_600_000);
    await settle(10_000);
    expect(shortLived).not.toHaveBeenCalled();
    await settle(6_000);
    expect(shortLived).toHaveBeenCalledTimes(1);
    short.close();
  });

  it('falls back to Server-Sent Events after repeated failed upgrades, and acks over POST', async () => {
    const requests: { url: string; init: RequestInit }[] = [];
    const encoder = new TextEncoder();
    let push: (text: string) => void = () => undefined;
    const fakeFetch = jest.fn(async (url: string, init?: RequestInit) => {
      requests.push({ url, init: init ?? {} });
      if (url.endsWith('/v1/stream/pong')) return new Response(null, { status: 204 });
      if (url.endsWith('/v1/acks')) {
        const ids = (JSON.parse(init?.body as string) as { ids: string[] }).ids;
        return new Response(JSON.stringify({ results: ids.map((id) => ({ id, status: 'ok' })) }), { status: 200 });
      }
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (text) => controller.enqueue(encoder.encode(text));
        },
      });
      return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
    });
    const c = client({ fetch: fakeFetch as unknown as typeof fetch });
    const seen: number[] = [];
    c.onNotification((n) => {
      seen.push(n.seq);
    });
    c.connect();
    await settle();
    for (let i = 0; i < 3; i++) {
      FakeSocket.last.refuse();
      await settle(10_000);
    }
    expect(c.transport).toBe('sse');
    expect(requests[0]!.url).toBe('http://herald.test/v1/stream');
    expect((requests[0]!.init.headers as Record<string, string>).Authorization).toBe('Bearer t0');
    push(
      `event: welcome\ndata: ${JSON.stringify({ type: 'welcome', protocol: 1, connectionId: 'c', userId: 'alice', replicaId: 'r2', heartbeatMs: 25000, maxMessageBytes: 65536 })}\n\n`,
    );
    push(`id: 9\nevent: notification\ndata: ${JSON.stringify(notification(9))}\n\n`);
    await settle(10);
    expect(c.readyState).toBe(ReadyState.OPEN);
    expect(seen).toEqual([9]);
    const acks = requests.filter((r) => r.url.endsWith('/v1/acks'));
    expect(acks.map((r) => JSON.parse(r.init.body as string) as unknown)).toEqual([{ ids: [notification(9).id] }]);
    await expect(c.subscribe('news')).rejects.toThrow(/WebSocket/);
    // Each heartbeat of the stream is answered, with the welcome's connection id.
    push(': ping\n\n');
    await settle(1);
    const pongs = requests.filter((r) => r.url.endsWith('/v1/stream/pong'));
    expect(pongs.map((r) => JSON.parse(r.init.body as string) as unknown)).toEqual([{ connectionId: 'c' }]);
    c.close();
  });
});

describe('HeraldClient acks', () => {
  const id = (seq: number) => notification(seq).id;

  /** An open client whose server offers `features`, with a handler that fails for the seqs in `failing`. */
  async function open(features: ProtocolFeature[] | undefined, options: Partial<HeraldClientOptions> = {}) {
    const c = client(options);
    const failing = new Set<number>();
    const received: Notification[] = [];
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    c.onNotification((n) => {
      received.push(n);
      if (failing.has(n.seq)) throw new Error('boom');
    });
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, features);
    return { c, failing, received, errors };
  }

  it('coalesces the acks of notifications that arrive a few milliseconds apart into one frame', async () => {
    const { c } = await open(undefined);
    FakeSocket.last.receive(notification(1));
    await settle(2);
    FakeSocket.last.receive(notification(2));
    await settle(2);
    expect(FakeSocket.last.ackFrames()).toEqual([]);
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'acks', ids: [id(1), id(2)] }]);
    c.close();
  });

  it('sends the acks of 100 handled notifications at once, without waiting for the timer', async () => {
    const { c } = await open(undefined, { ackMode: 'manual' });
    const ids = Array.from({ length: 100 }, (_, i) => id(i + 1));
    for (const each of ids.slice(0, 99)) c.ack(each);
    expect(FakeSocket.last.ackFrames()).toEqual([]);
    c.ack(ids[99]!);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'acks', ids }]);
    c.close();
  });

  it('acks a handled burst with one through frame for the last notification in wire order', async () => {
    const { c, errors } = await open(['ackThrough']);
    FakeSocket.last.receive(notification(3), notification(1), notification(4), notification(2));
    await settle(5);
    // Handled in seq order, but the server covers by its send order: the last one sent is seq 2.
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'ack', id: id(2), through: true }]);
    FakeSocket.last.receive({ type: 'ack', id: id(2), status: 'ok', settled: 4 });
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toHaveLength(1);
    expect(errors).toEqual([]);
    c.close();
  });

  it('stops the through before a notification whose handler failed, and acks the ones after it per id', async () => {
    const { c, failing } = await open(['ackThrough']);
    failing.add(3);
    FakeSocket.last.receive(...[1, 2, 3, 4, 5].map((seq) => notification(seq)));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([
      { type: 'ack', id: id(2), through: true },
      { type: 'acks', ids: [id(4), id(5)] },
    ]);
    // Sent again on this connection and handled this time: no barrier now, one through covers it and the next.
    failing.clear();
    FakeSocket.last.receive({ ...notification(3), attempt: 2 }, notification(6), notification(7));
    await settle(5);
    expect(FakeSocket.last.ackFrames().slice(2)).toEqual([{ type: 'ack', id: id(7), through: true }]);
    c.close();
  });

  it('in manual mode covers only the head of what arrived that the app has acked', async () => {
    const { c, received } = await open(['ackThrough'], { ackMode: 'manual' });
    FakeSocket.last.receive(notification(1), notification(2), notification(3), notification(4));
    await settle();
    received[3]!.ack();
    received[1]!.ack();
    received[0]!.ack();
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([
      { type: 'ack', id: id(2), through: true },
      { type: 'ack', id: id(4) },
    ]);
    c.close();
  });

  it('sends per-id acks only to a server whose welcome lists no ackThrough (an older server)', async () => {
    const { c, failing } = await open(undefined);
    failing.add(2);
    FakeSocket.last.receive(notification(1), notification(2), notification(3), notification(4));
    await settle(5);
    FakeSocket.last.receive(notification(5));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([
      { type: 'acks', ids: [id(1), id(3), id(4)] },
      { type: 'ack', id: id(5) },
    ]);
    c.close();
  });

  it('sends the ids of a refused through again, per id, without an error event', async () => {
    const { c, errors } = await open(['ackThrough']);
    FakeSocket.last.receive(notification(1), notification(2), notification(3));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'ack', id: id(3), through: true }]);
    FakeSocket.last.receive({
      type: 'error',
      code: 'BAD_REQUEST',
      message: '"through" covers only notifications sent on this connection; ack this one by id',
      id: id(3),
    });
    await settle(5);
    expect(FakeSocket.last.ackFrames().slice(1)).toEqual([{ type: 'acks', ids: [id(1), id(2), id(3)] }]);
    expect(errors).toEqual([]);
    c.close();
  });

  it('sends the ids of a through still unanswered when the connection drops per id on the next one', async () => {
    const { c } = await open(['ackThrough']);
    FakeSocket.last.receive(notification(1), notification(2));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'ack', id: id(2), through: true }]);
    FakeSocket.last.serverClose(1006);
    await settle(1000);
    FakeSocket.last.accept(25_000, ['ackThrough']);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'acks', ids: [id(1), id(2)] }]);
    c.close();
  });

  it('marks its per-id acks quiet where the welcome lists quietAcks, and keeps a through answered', async () => {
    const { c, failing } = await open(['ackThrough', 'quietAcks']);
    failing.add(3);
    FakeSocket.last.receive(notification(1), notification(2), notification(3), notification(4));
    await settle(5);
    FakeSocket.last.receive(notification(5));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([
      { type: 'ack', id: id(2), through: true },
      { type: 'ack', id: id(4), quiet: true },
      { type: 'ack', id: id(5), quiet: true },
    ]);
    c.close();
  });

  it('stops marking acks quiet on a connection whose welcome does not list quietAcks', async () => {
    const { c } = await open(['quietAcks']);
    FakeSocket.last.receive(notification(1));
    await settle(5);
    FakeSocket.last.serverClose(1006);
    await settle(1000);
    FakeSocket.last.accept(25_000, []);
    FakeSocket.last.receive(notification(2));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'ack', id: id(2) }]);
    c.close();
  });

  it('reports a quiet ack the server refused as an error event, as it does an answered one', async () => {
    const { c, errors } = await open(['quietAcks']);
    FakeSocket.last.receive(notification(1));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'ack', id: id(1), quiet: true }]);
    FakeSocket.last.receive({
      type: 'error',
      code: 'FORBIDDEN',
      message: 'no such notification for this user',
      id: id(1),
    });
    await settle();
    expect(errors).toEqual(['no such notification for this user']);
    c.close();
  });

  it('never covers past a frame it could not read, which may have been a notification', async () => {
    const { c, errors } = await open(['ackThrough']);
    FakeSocket.last.receive(notification(1));
    FakeSocket.last.onmessage?.({ data: '{"type":"notification",' });
    FakeSocket.last.receive(notification(2));
    await settle(5);
    expect(FakeSocket.last.ackFrames()).toEqual([{ type: 'acks', ids: [id(1), id(2)] }]);
    expect(errors).toEqual(['the server sent a frame that is not JSON']);
    c.close();
  });
});
