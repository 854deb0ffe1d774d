import type { InboxItem, StateFrame } from '@herald/protocol';
import { client, FakeSocket, notification, settle } from '../test/fake-server.js';
import type { HeraldClient } from './client.js';
import { applyInboxChange, InboxError } from './inbox-state.js';
import { INBOX_COMMAND_TIMEOUT_MS } from './inbox-sync.js';

const id = (seq: number) => notification(seq).id;

/** One request the SDK made, as the fake server saw it. */
interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

type Route = (request: Seen) => { status?: number; body: unknown } | Promise<{ status?: number; body: unknown }>;

/**
 * The REST side of the fake server: answers `/v1/me/…` by route (`GET unread-count`, `POST read`, …), with
 * defaults for the count fetch (3 unread, newest item seq 10), and keeps every request.
 */
function fakeRest(routes: Record<string, Route> = {}) {
  const requests: Seen[] = [];
  const defaults: Record<string, Route> = {
    'GET unread-count': () => ({ body: { unreadCount: 3 } }),
    'GET notifications': () => ({ body: { items: [item(10)], nextCursor: '10' } }),
  };
  const fetch = jest.fn(async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    const headers = (init.headers ?? {}) as Record<string, string>;
    const body = typeof init.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    const request = { method, url, authorization: headers.Authorization, body };
    requests.push(request);
    const path = new URL(url).pathname.replace(/^.*\/v1\/me\//, '');
    const route = routes[`${method} ${path}`] ?? defaults[`${method} ${path}`];
    if (!route)
      return new Response(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }), { status: 404 });
    const answer = await route(request);
    return new Response(JSON.stringify(answer.body), { status: answer.status ?? 200 });
  });
  return {
    fetch: fetch as unknown as typeof globalThis.fetch,
    requests,
    of: (what: string) => requests.filter((r) => `${r.method} ${new URL(r.url).pathname}` === what),
  };
}

function item(seq: number, flags: Partial<InboxItem> = {}): InboxItem {
  const { event, payload, timestamp } = notification(seq);
  return { id: id(seq), seq, event, payload, timestamp, seen: false, read: false, archived: false, ...flags };
}

function state(action: StateFrame['action'], unreadCount: number, more: Partial<StateFrame> = {}): StateFrame {
  return { type: 'state', action, unreadCount, ...more };
}

/** A client with the inbox on, connected over a WebSocket whose welcome grants it, and its count fetched. */
async function connected(rest = fakeRest()): Promise<HeraldClient> {
  const c = client({ inbox: true, fetch: rest.fetch });
  c.connect();
  await settle();
  FakeSocket.last.accept(25_000, ['ackThrough', 'inbox']);
  await settle();
  return c;
}

beforeEach(() => {
  jest.useFakeTimers();
  FakeSocket.all = [];
});

afterEach(() => {
  jest.useRealTimers();
});

describe('client.inbox', () => {
  it('asks for the inbox feature in its connect URL, on the WebSocket and on the SSE stream', async () => {
    const ws = client({ inbox: true, url: 'ws://herald.test/ws?features=future' });
    ws.connect();
    await settle();
    expect(new URL(FakeSocket.last.url).searchParams.get('features')).toBe('future,inbox');
    ws.close();

    const rest = fakeRest();
    const sse = client({ inbox: true, transport: 'sse', fetch: rest.fetch });
    sse.connect();
    await settle();
    expect(rest.requests[0]!.url).toBe('http://herald.test/v1/stream?features=inbox');
    sse.close();

    const without = client();
    without.connect();
    await settle();
    expect(new URL(FakeSocket.last.url).searchParams.has('features')).toBe(false);
    expect(() => without.inbox).toThrow('create the client with { inbox: true }');
    without.close();
  });

  it('fetches the unread count at every welcome, with the user token, and follows each state frame', async () => {
    let unread = 3;
    const rest = fakeRest({ 'GET unread-count': () => ({ body: { unreadCount: unread } }) });
    const c = client({ inbox: true, fetch: rest.fetch });
    const counts: number[] = [];
    const changes: StateFrame[] = [];
    c.inbox.onUnreadCount((n) => counts.push(n));
    c.inbox.on('change', (frame) => changes.push(frame));
    expect(c.inbox.unreadCount).toBeNull();
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, ['inbox']);
    await settle();
    expect(c.inbox.unreadCount).toBe(3);
    expect(rest.of('GET /v1/me/unread-count')[0]!.authorization).toBe('Bearer t0');
    const readOne = state('read', 2, { ids: [id(9)] });
    FakeSocket.last.receive(readOne);
    expect(changes).toEqual([readOne]);
    expect(c.inbox.unreadCount).toBe(2);

    // A reconnect fetches it again: what changed while away is in it.
    unread = 7;
    FakeSocket.last.serverClose(1006);
    await settle(1000);
    FakeSocket.last.accept(25_000, ['inbox']);
    await settle();
    expect(counts).toEqual([3, 2, 7]);
    // A late listener hears the count now.
    const late: number[] = [];
    c.inbox.onUnreadCount((n) => late.push(n));
    expect(late).toEqual([7]);
    c.close();
  });

  it('raises the count at once for a notification it has not seen, not for a copy nor a replay the count took in', async () => {
    const c = await connected();
    expect(c.inbox.unreadCount).toBe(3);
    // Seq 9 was published before the count was read (the newest item then was seq 10): it is in the 3.
    FakeSocket.last.receive(notification(9), notification(11));
    expect(c.inbox.unreadCount).toBe(4);
    FakeSocket.last.receive(notification(11));
    expect(c.inbox.unreadCount).toBe(4);
    c.close();
  });

  it('does not count a notification that arrives after a state frame that took it in', async () => {
    const c = await connected();
    // Read on another device before it got here: the frame's count has it already.
    FakeSocket.last.receive(state('read', 3, { ids: [id(11)] }), notification(11));
    expect(c.inbox.unreadCount).toBe(3);
    FakeSocket.last.receive(state('readAll', 0, { throughSeq: 20 }), notification(15), notification(21));
    expect(c.inbox.unreadCount).toBe(1);
    c.close();
  });

  it('counts what arrives while the count is being fetched by the newest item the count took in', async () => {
    let answer: () => void = () => undefined;
    const rest = fakeRest({
      'GET unread-count': () => new Promise((resolve) => (answer = () => resolve({ body: { unreadCount: 3 } }))),
    });
    const c = client({ inbox: true, fetch: rest.fetch });
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, ['inbox']);
    // The replay (up to seq 10, in the count) and a live one (12, after it) arrive before the count does.
    FakeSocket.last.receive(notification(8), notification(10), notification(12));
    await settle();
    expect(c.inbox.unreadCount).toBeNull();
    answer();
    await settle();
    expect(c.inbox.unreadCount).toBe(4);
    c.close();
  });

  it('takes a state frame that arrives during the fetch over the fetched count', async () => {
    let answer: () => void = () => undefined;
    const rest = fakeRest({
      'GET unread-count': () => new Promise((resolve) => (answer = () => resolve({ body: { unreadCount: 3 } }))),
    });
    const c = client({ inbox: true, fetch: rest.fetch });
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, ['inbox']);
    FakeSocket.last.receive(state('readAll', 0, { throughSeq: 10 }));
    answer();
    await settle();
    expect(c.inbox.unreadCount).toBe(0);
    FakeSocket.last.receive(notification(11));
    expect(c.inbox.unreadCount).toBe(1);
    c.close();
  });

  it('sends actions as frames with an id on a WebSocket with the feature, and resolves on their ack', async () => {
    const rest = fakeRest();
    const c = await connected(rest);
    const done = c.inbox.markRead([id(1), id(1).toUpperCase(), id(2)]);
    expect(FakeSocket.last.sentOfType('read')).toEqual([{ type: 'read', ids: [id(1), id(2)], id: 'i1' }]);
    FakeSocket.last.receive({ type: 'ack', id: 'i1', status: 'ok' });
    await expect(done).resolves.toBeUndefined();
    for (const [method, type] of [
      ['markSeen', 'seen'],
      ['markUnseen', 'unseen'],
      ['markUnread', 'unread'],
      ['archive', 'archive'],
      ['unarchive', 'unarchive'],
    ] as const) {
      c.inbox[method]([id(3)]).catch(() => undefined); // unanswered here
      expect(FakeSocket.last.sent.at(-1)).toMatchObject({ type, ids: [id(3)] });
    }
    // 150 ids: two frames of at most 100.
    c.inbox.archive(Array.from({ length: 150 }, (_, i) => id(100 + i))).catch(() => undefined);
    expect(
      FakeSocket.last
        .sentOfType('archive')
        .slice(-2)
        .map((f) => (f.ids as string[]).length),
    ).toEqual([100, 50]);
    expect(rest.requests.filter((r) => r.method === 'POST')).toEqual([]);
    c.close();
  });

  it('rejects an action with an InboxError naming the ids that are not the user’s, and one the server refused', async () => {
    const c = await connected();
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    const refused = c.inbox.markRead([id(1), id(2)]);
    FakeSocket.last.receive({ type: 'error', code: 'FORBIDDEN', message: 'not yours', ids: [id(2)], id: 'i1' });
    await expect(refused).rejects.toMatchObject({ name: 'InboxError', code: 'FORBIDDEN', ids: [id(2)] });
    await expect(refused).rejects.toThrow(`not in this user's inbox: ${id(2)} (the other ids were applied)`);

    const limited = c.inbox.archive([id(3)]);
    FakeSocket.last.receive({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', id: 'i2' });
    await expect(limited).rejects.toThrow('"archive" refused: slow down');

    // Not ids at all: refused before anything is sent; an empty list is nothing to do.
    const sent = FakeSocket.last.sent.length;
    await expect(c.inbox.markRead(['42', id(4)])).rejects.toMatchObject({ code: 'BAD_REQUEST', ids: ['42'] });
    await expect(c.inbox.markRead([])).resolves.toBeUndefined();
    expect(FakeSocket.last.sent.length).toBe(sent);
    // A refused action rejects its promise; it is not the client's error event.
    expect(errors).toEqual([]);
    c.close();
  });

  it('goes by REST while disconnected, and takes the count from the answer', async () => {
    const rest = fakeRest({
      'POST read': ({ body }) => ({
        body: {
          results: (body as { ids: string[] }).ids.map((i) => ({ id: i, status: i === id(2) ? 'forbidden' : 'ok' })),
          unreadCount: 5,
        },
      }),
    });
    const c = client({ inbox: true, fetch: rest.fetch });
    const error = await c.inbox.markRead([id(1), id(2)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InboxError);
    expect(error).toMatchObject({ code: 'FORBIDDEN', ids: [id(2)] });
    expect(rest.of('POST /v1/me/read')).toEqual([
      expect.objectContaining({ authorization: 'Bearer t0', body: { ids: [id(1), id(2)] } }),
    ]);
    expect(c.inbox.unreadCount).toBe(5);
  });

  it('goes by REST on the SSE stream, and sends an action whose connection dropped again by REST', async () => {
    const ok = ({ body }: Seen) => ({
      body: { results: (body as { ids: string[] }).ids.map((i) => ({ id: i, status: 'ok' })), unreadCount: 1 },
    });
    const rest = fakeRest({ 'POST seen': ok, 'POST archive': ok });
    const c = await connected(rest);
    const archived = c.inbox.archive([id(1)]);
    expect(FakeSocket.last.sentOfType('archive')).toHaveLength(1);
    FakeSocket.last.serverClose(1006);
    await expect(archived).resolves.toBeUndefined();
    expect(rest.of('POST /v1/me/archive')).toHaveLength(1);

    // No answer in time: the same, by REST.
    await settle(1000);
    FakeSocket.last.accept(25_000, ['inbox']);
    await settle();
    const seen = c.inbox.markSeen([id(2)]);
    await settle(INBOX_COMMAND_TIMEOUT_MS);
    await expect(seen).resolves.toBeUndefined();
    expect(rest.of('POST /v1/me/seen')).toHaveLength(1);
    c.close();
  });

  it('marks all read by REST, for a topic too, and lists pages with the query it is given', async () => {
    const rest = fakeRest({
      'POST read-all': () => ({ body: { unreadCount: 0, throughSeq: 42 } }),
      'GET notifications': () => ({ body: { items: [item(7)], nextCursor: null } }),
    });
    const c = client({ inbox: true, fetch: rest.fetch, url: 'ws://herald.test/base/ws' });
    await expect(c.inbox.markAllRead('orders')).resolves.toEqual({ unreadCount: 0, throughSeq: 42 });
    expect(rest.requests[0]).toMatchObject({
      url: 'http://herald.test/base/v1/me/read-all',
      body: { topic: 'orders' },
    });
    expect(c.inbox.unreadCount).toBe(0);
    await expect(c.inbox.list({ limit: 5, cursor: '99', unread: true, event: 'order.shipped' })).resolves.toEqual({
      items: [item(7)],
      nextCursor: null,
    });
    expect(rest.requests[1]!.url).toBe(
      'http://herald.test/base/v1/me/notifications?limit=5&cursor=99&unread=true&event=order.shipped',
    );
  });

  it('fetches a fresh token when the REST refuses one, and says what the server answered otherwise', async () => {
    const tokens = ['old', 'new'];
    const rest = fakeRest({
      'GET notifications': ({ authorization }) =>
        authorization === 'Bearer new'
          ? { body: { items: [], nextCursor: null } }
          : { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'token expired' } } },
      'POST read-all': () => ({
        status: 400,
        body: { error: { code: 'BAD_REQUEST', message: 'topic: must be a topic' } },
      }),
    });
    const c = client({ inbox: true, fetch: rest.fetch, token: undefined, getToken: () => tokens.shift()! });
    await expect(c.inbox.list()).resolves.toEqual({ items: [], nextCursor: null });
    await expect(c.inbox.markAllRead('bad topic')).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      status: 400,
      message: 'POST /v1/me/read-all answered 400: topic: must be a topic',
    });
  });

  it('fetches the count again after a failure that may pass, with growing delays, while connected', async () => {
    let answers = [503, 503, 200];
    const rest = fakeRest({
      'GET unread-count': () => {
        const status = answers.shift() ?? 200;
        return status === 200
          ? { body: { unreadCount: 4 } }
          : { status, body: { error: { code: 'UNAVAILABLE', message: 'store down' } } };
      },
    });
    const errors: string[] = [];
    const c = client({ inbox: true, fetch: rest.fetch });
    c.on('error', (e) => errors.push(e.message));
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, ['inbox']);
    await settle(999);
    expect(c.inbox.unreadCount).toBeNull();
    await settle(1 + 2000);
    expect(c.inbox.unreadCount).toBe(4);
    expect(errors).toEqual([
      'unread count not fetched: GET /v1/me/unread-count answered 503: store down; trying again in 1000 ms',
      'unread count not fetched: GET /v1/me/unread-count answered 503: store down; trying again in 2000 ms',
    ]);
    // A refusal (a 4xx other than 429) is not tried again.
    answers = [404];
    FakeSocket.last.serverClose(1006);
    await settle(1000);
    FakeSocket.last.accept(25_000, ['inbox']);
    await settle(5000);
    expect(errors.at(-1)).toBe('unread count not fetched: GET /v1/me/unread-count answered 404: store down');
    expect(rest.of('GET /v1/me/unread-count')).toHaveLength(4);
    c.close();
  });

  it('says so, once per welcome, when the server does not grant the feature, and keeps no count', async () => {
    const rest = fakeRest();
    const c = client({ inbox: true, fetch: rest.fetch });
    const errors: (string | undefined)[] = [];
    c.on('error', (e) => errors.push(e.code));
    c.connect();
    await settle();
    FakeSocket.last.accept(25_000, ['ackThrough']);
    await settle();
    expect(errors).toEqual(['INBOX_OFF']);
    expect(c.inbox.unreadCount).toBeNull();
    expect(rest.requests).toEqual([]);
    c.close();
  });
});

describe('applyInboxChange', () => {
  it('applies each action to the items it names, read implying seen, and readAll up to its seq and topic', () => {
    const unread = item(5);
    const apply = (frame: StateFrame, on = unread) => applyInboxChange(on, frame);
    expect(apply(state('read', 0, { ids: [id(5)] }))).toMatchObject({ seen: true, read: true });
    expect(apply(state('read', 0, { ids: [id(6)] }))).toBe(unread);
    expect(apply(state('unseen', 0, { ids: [id(5)] }), item(5, { seen: true, read: true }))).toMatchObject({
      seen: false,
      read: false,
    });
    expect(apply(state('unread', 1, { ids: [id(5)] }), item(5, { seen: true, read: true }))).toMatchObject({
      seen: true,
      read: false,
    });
    expect(apply(state('archive', 0, { ids: [id(5)] }))).toMatchObject({ archived: true });
    expect(apply(state('readAll', 0, { throughSeq: 5 }))).toMatchObject({ read: true, seen: true });
    expect(apply(state('readAll', 0, { throughSeq: 4 }))).toBe(unread);
    expect(apply(state('readAll', 0, { throughSeq: 9, topic: 'orders' }))).toBe(unread);
    expect(apply(state('readAll', 0, { throughSeq: 9, topic: 'orders' }), item(5, { topic: 'orders' }))).toMatchObject({
      read: true,
    });
  });
});
