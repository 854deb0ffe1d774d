import { randomUUID } from 'node:crypto';
import type {
  AdminInboxResponse,
  AdminSession,
  ErrorFrame,
  InboxPage,
  InboxStateResponse,
  ServerFrame,
  StateFrame,
  WelcomeFrame,
} from '@herald/protocol';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../apps/herald/src/database/data-source';
import { InboxRepository } from '../../apps/herald/src/record/inbox.repository';
import { idBoundAt } from '../../apps/herald/src/record/notification-id';
import { request, publish, userToken, type HttpResult } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { scrape } from '../helpers/metrics';
import { TEST_ADMIN_PASSWORD } from '../helpers/replica';
import { holdFor, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * The synced inbox (issue 29, ADR 0026) on one in-process app against real PostgreSQL and Redis: the list and
 * the count from the record, state frames and their REST twins, floors, the `inbox` feature, and bad input.
 * Two replicas behind Nginx: test/e2e/inbox.e2e-spec.ts.
 */
describe('The synced inbox', () => {
  let herald: InProcessHerald;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  const me = <T>(userId: string, method: string, path: string, body?: unknown): Promise<HttpResult<T>> =>
    request<T>(herald.http, method, `/v1/me/${path}`, {
      apiKey: null,
      headers: { authorization: `Bearer ${userToken(userId)}` },
      ...(body !== undefined ? { body } : {}),
    });
  const list = async (userId: string, query = ''): Promise<InboxPage> => {
    const result = await me<InboxPage>(userId, 'GET', `notifications${query}`);
    expect(result.status).toBe(200);
    return result.body;
  };
  const unread = async (userId: string): Promise<number> =>
    (await me<{ unreadCount: number }>(userId, 'GET', 'unread-count')).body.unreadCount;
  const connect = async (userId: string, features = 'inbox'): Promise<TestClient> => {
    const client = await TestClient.connect(
      features === '' ? herald.ws : `${herald.ws}?features=${features}`,
      userToken(userId),
      { via: 'header', autoAck: true },
    );
    clients.push(client);
    return client;
  };
  const send = async (userId: string, event = 'e', payload: Record<string, number> = {}): Promise<string> =>
    (await publish(herald.http, { to: { users: [userId] }, event, payload })).id;
  const isState = (f: ServerFrame): f is StateFrame => f.type === 'state';

  beforeAll(async () => {
    herald = await InProcessHerald.start('inbox', { HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('lists what the user was sent, newest first, in pages, with filters; the count is what is unread', async () => {
    const ann = user('ann');
    const topic = `t-${randomUUID().slice(0, 8)}`;
    const watcher = await connect(ann);
    watcher.send({ type: 'subscribe', channel: topic, id: 's' });
    await watcher.next((f) => f.type === 'ack' && f.id === 's');
    const a = await send(ann, 'order.shipped', { n: 1 });
    const b = (await publish(herald.http, { to: { topic }, event: 'news', payload: { n: 2 } })).id;
    const c = await send(ann, 'order.shipped', { n: 3 });
    await watcher.notification(c);

    const page = await list(ann);
    expect(page.items.map((i) => i.id)).toEqual([c, b, a]);
    expect(page.items[1]).toMatchObject({ id: b, event: 'news', topic, payload: { n: 2 }, seen: false, read: false });
    expect(page.items[1]!.archived).toBe(false);
    expect(page.nextCursor).toBeNull();
    expect(await unread(ann)).toBe(3);

    const first = await list(ann, '?limit=2');
    expect(first.items.map((i) => i.id)).toEqual([c, b]);
    expect(first.nextCursor).toBe(String(first.items[1]!.seq));
    const second = await list(ann, `?limit=2&cursor=${first.nextCursor}`);
    expect(second.items.map((i) => i.id)).toEqual([a]);
    expect(second.nextCursor).toBeNull();
    expect((await list(ann, '?event=order.shipped')).items.map((i) => i.id)).toEqual([c, a]);
    // Another user sees none of it.
    expect((await list(user('bob'))).items).toEqual([]);
  });

  it('marks read over the socket: acked, the other device told within a second, the count agrees everywhere', async () => {
    const ann = user('ann');
    const phone = await connect(ann);
    const laptop = await connect(ann);
    const old = await connect(ann, '');
    const ids = [await send(ann), await send(ann), await send(ann)];
    await laptop.notification(ids[2]!);
    expect((phone.frames.find((f) => f.type === 'welcome') as WelcomeFrame).features).toContain('inbox');
    expect((old.frames.find((f) => f.type === 'welcome') as WelcomeFrame).features).not.toContain('inbox');

    const asked = Date.now();
    expect(await phone.command({ type: 'read', ids: [ids[0]!.toUpperCase(), ids[1]], id: 'r1' })).toEqual({
      type: 'ack',
      id: 'r1',
      status: 'ok',
    });
    const seen = await laptop.next(isState);
    expect(Date.now() - asked).toBeLessThan(1000);
    expect(seen).toEqual({ type: 'state', action: 'read', ids: [ids[0], ids[1]], unreadCount: 1 });
    expect(await phone.next(isState)).toEqual(seen);
    expect(await unread(ann)).toBe(1);
    const items = (await list(ann)).items;
    expect(items.map((i) => [i.read, i.seen])).toEqual([
      [false, false],
      [true, true],
      [true, true],
    ]);
    // The unread filter, both ways.
    expect((await list(ann, '?unread=true')).items.map((i) => i.id)).toEqual([ids[2]]);
    expect((await list(ann, '?unread=false')).items.map((i) => i.id)).toEqual([ids[1], ids[0]]);
    // A connection that did not ask for the feature is sent nothing new.
    await holdFor('a state frame that must not reach the connection without the feature', 300);
    expect(old.frames.filter((f) => f.type === 'state')).toEqual([]);
  });

  it('answers bad input exactly: ids not the user’s, too many, malformed; bad queries; unknown actions', async () => {
    const ann = user('ann');
    const bob = user('bob');
    const mine = await send(ann);
    const bobs = await send(bob);
    const unknown = randomUUID();
    const socket = await connect(ann);

    const answer = (await socket.command({ type: 'archive', ids: [mine, bobs, unknown], id: 'a1' })) as ErrorFrame;
    expect(answer).toMatchObject({ type: 'error', code: 'FORBIDDEN', id: 'a1' });
    expect(answer.ids).toEqual([bobs, unknown]);
    expect(answer.message).toBe("2 of the ids are not notifications in this user's inbox; the others were applied");
    // The id that was the user's was applied; bob's item is untouched.
    expect((await list(ann, '?archived=true')).items.map((i) => i.id)).toEqual([mine]);
    expect((await list(bob)).items[0]).toMatchObject({ id: bobs, archived: false });

    const tooMany = Array.from({ length: 101 }, () => randomUUID());
    expect(await socket.command({ type: 'read', ids: tooMany, id: 'r2' })).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      id: 'r2',
      message: '"read" needs "ids": an array of 1-100 notification ids',
    });
    expect(await socket.command({ type: 'seen', ids: ['nope'], id: 'r3' })).toMatchObject({
      type: 'error',
      code: 'BAD_REQUEST',
      message: 'each id must be a notification id (a UUID)',
    });

    const rest = await me<InboxStateResponse>(ann, 'POST', 'read', { ids: [mine, bobs] });
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual({
      results: [
        { id: mine, status: 'ok' },
        { id: bobs, status: 'forbidden' },
      ],
      unreadCount: 0,
    });
    const tooManyRest = await me<{ error: { message: string } }>(ann, 'POST', 'unread', { ids: tooMany });
    expect(tooManyRest.status).toBe(400);
    expect(tooManyRest.body.error.message).toBe('ids: required: an array of 1-100 notification ids');
    const badAction = await me<{ error: { code: string; message: string } }>(ann, 'POST', 'delete', { ids: [mine] });
    expect(badAction.status).toBe(404);
    expect(badAction.body.error.message).toBe(
      'no inbox action "delete": use one of seen, unseen, read, unread, archive, unarchive, or read-all',
    );
    for (const [query, message] of [
      ['?limit=0', 'limit must be a whole number from 1 to 100'],
      ['?limit=101', 'limit must be a whole number from 1 to 100'],
      ['?cursor=abc', 'cursor must be the nextCursor of a previous page'],
      ['?unread=yes', 'unread must be true or false'],
    ] as const) {
      const result = await me<{ error: { code: string; message: string } }>(ann, 'GET', `notifications${query}`);
      expect([query, result.status, result.body.error.message]).toEqual([query, 400, message]);
    }
    // Without a user token: 401, as on /v1/acks; an API key is not one.
    const anonymous = await request(herald.http, 'GET', '/v1/me/unread-count', {});
    expect(anonymous.status).toBe(401);
  });

  it('marks all read with a floor, per topic too; an item marked unread after it, or published after it, is unread', async () => {
    const ann = user('ann');
    const topic = `t-${randomUUID().slice(0, 8)}`;
    const socket = await connect(ann);
    socket.send({ type: 'subscribe', channel: topic, id: 's' });
    await socket.next((f) => f.type === 'ack' && f.id === 's');
    const direct = await send(ann);
    const fromTopic = (await publish(herald.http, { to: { topic }, event: 'news', payload: {} })).id;
    await socket.notification(fromTopic);
    expect(await unread(ann)).toBe(2);

    const topicOnly = await me<{ unreadCount: number; throughSeq: number }>(ann, 'POST', 'read-all', { topic });
    expect(topicOnly.body.unreadCount).toBe(1);
    expect(await socket.next((f): f is StateFrame => isState(f) && f.action === 'readAll')).toMatchObject({
      topic,
      unreadCount: 1,
    });
    const all = await me<{ unreadCount: number; throughSeq: number }>(ann, 'POST', 'read-all');
    expect(all.status).toBe(200);
    expect(all.body.unreadCount).toBe(0);
    expect((await list(ann)).items.every((i) => i.read && i.seen)).toBe(true);

    await me(ann, 'POST', 'unread', { ids: [direct] });
    const later = await send(ann);
    const items = (await list(ann)).items;
    expect(items.map((i) => [i.id, i.read])).toEqual([
      [later, false],
      [fromTopic, true],
      [direct, false],
    ]);
    expect(await unread(ann)).toBe(2);
    // Archived items leave the count and the default list, and come back unarchived.
    await me(ann, 'POST', 'archive', { ids: [later] });
    expect(await unread(ann)).toBe(1);
    expect((await list(ann)).items.map((i) => i.id)).toEqual([fromTopic, direct]);
    await me(ann, 'POST', 'unarchive', { ids: [later] });
    expect(await unread(ann)).toBe(2);
    // Seen is not read; unseen takes read away too.
    await me(ann, 'POST', 'seen', { ids: [later] });
    expect((await list(ann)).items[0]).toMatchObject({ id: later, seen: true, read: false });
    await me(ann, 'POST', 'unseen', { ids: [fromTopic] });
    expect((await list(ann)).items[1]).toMatchObject({ id: fromTopic, seen: false, read: false });
    expect(await unread(ann)).toBe(3);
    const metrics = await scrape([herald.http]);
    expect(metrics.get('herald_inbox_changes_total{action="readAll"}')).toBeGreaterThanOrEqual(2);
    expect(metrics.get('herald_inbox_changes_total{action="unarchive"}')).toBeGreaterThanOrEqual(1);
  });

  it('counts what had ended by the upgrade as read (the epoch), rows and stream offsets alike, and never changes that later', async () => {
    const ann = user('ann');
    const topic = `t-${randomUUID().slice(0, 8)}`;
    const socket = await connect(ann);
    socket.send({ type: 'subscribe', channel: topic, id: 's' });
    await socket.next((f) => f.type === 'ack' && f.id === 's');
    const acked = await send(ann);
    const streamAcked = (await publish(herald.http, { to: { topic }, event: 'news', payload: {} })).id;
    await socket.notification(streamAcked);
    await waitFor('both acks to be recorded', async () => {
      const [row] = await herald.db.query<{ n: number }>(
        `SELECT ((SELECT count(*) FROM deliveries WHERE notification_id = $1 AND status = 'acked')
               + (SELECT count(*) FROM broadcast_acks WHERE notification_id = $2))::int AS n`,
        [acked, streamAcked],
      );
      return row?.n === 2;
    });
    await socket.close();
    const open = await send(ann);
    const expired = await publish(herald.http, { to: { topic }, event: 'news', payload: {}, ttlSeconds: 1 });
    await holdFor('the broadcast’s TTL to pass while ann is away', 1_100);
    // As if the upgrade ran now.
    await herald.db.query(`UPDATE inbox_epoch SET seq = (SELECT max(seq) FROM notifications), set_at = now()`);
    const [epoch] = await herald.db.query<{ seq: string }>(`SELECT seq::text AS seq FROM inbox_epoch`);
    const store: DataSource = await createDataSource(herald.db.url).initialize();
    try {
      const inbox = new InboxRepository(store);
      const window = idBoundAt(Date.now() - 86_400_000);
      const read = async (at: number) =>
        (await inbox.list(ann, window, at, { limit: 10 })).items.map((i) => [i.id, i.read]);
      expect(await read(0)).toEqual([
        [expired.id, false],
        [open, false],
        [streamAcked, false],
        [acked, false],
      ]);
      const atEpoch = [
        [expired.id, true],
        [open, false],
        [streamAcked, true],
        [acked, true],
      ];
      expect(await read(Number(epoch!.seq))).toEqual(atEpoch);
      expect(await inbox.unreadCount(ann, window, Number(epoch!.seq))).toBe(1);
      // Acked after the upgrade: still unread (the rule is the upgrade's, not the clock's).
      const ack = await request<{ results: { status: string }[] }>(herald.http, 'POST', '/v1/acks', {
        apiKey: null,
        headers: { authorization: `Bearer ${userToken(ann)}` },
        body: { ids: [open] },
      });
      expect(ack.body.results).toEqual([{ id: open, status: 'ok' }]);
      expect(await read(Number(epoch!.seq))).toEqual(atEpoch);
    } finally {
      await store.destroy();
    }
  });

  it('keeps a topic’s earlier items when the user unsubscribes and subscribes again', async () => {
    const ann = user('ann');
    const topic = `t-${randomUUID().slice(0, 8)}`;
    const socket = await connect(ann);
    const command = async (type: string, id: string) => {
      socket.send({ type, channel: topic, id });
      await socket.next((f) => f.type === 'ack' && f.id === id);
    };
    await command('subscribe', 's1');
    const before = (await publish(herald.http, { to: { topic }, event: 'news', payload: { n: 1 } })).id;
    await socket.notification(before);
    await command('unsubscribe', 'u1');
    await command('subscribe', 's2');
    const after = (await publish(herald.http, { to: { topic }, event: 'news', payload: { n: 2 } })).id;
    await socket.notification(after);
    expect((await list(ann)).items.map((i) => i.id)).toEqual([after, before]);
    expect(await unread(ann)).toBe(2);
    const marked = await me<InboxStateResponse>(ann, 'POST', 'read', { ids: [before] });
    expect(marked.body).toEqual({ results: [{ id: before, status: 'ok' }], unreadCount: 1 });
  });

  it('shows an admin a user’s inbox, and refuses a bad user id or query', async () => {
    const ann = user('ann');
    const ids = [await send(ann, 'e', { n: 1 }), await send(ann, 'e', { n: 2 })];
    await me(ann, 'POST', 'read', { ids: [ids[0]] });
    const login = await request<AdminSession>(herald.http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: TEST_ADMIN_PASSWORD },
    });
    const admin = { apiKey: null, headers: { authorization: `Bearer ${login.body.token}` } };
    const view = await request<AdminInboxResponse>(herald.http, 'GET', `/admin/api/users/${ann}/inbox`, admin);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ userId: ann, unreadCount: 1, inboxRetentionDays: 30, nextCursor: null });
    expect(view.body.items.map((i) => [i.id, i.read, i.payload])).toEqual([
      [ids[1], false, { n: 2 }],
      [ids[0], true, { n: 1 }],
    ]);
    const nobody = await request<AdminInboxResponse>(herald.http, 'GET', `/admin/api/users/${user('x')}/inbox`, admin);
    expect([nobody.status, nobody.body.items, nobody.body.unreadCount]).toEqual([200, [], 0]);
    const badUser = await request<{ error: { message: string } }>(
      herald.http,
      'GET',
      '/admin/api/users/a%20b/inbox',
      admin,
    );
    expect([badUser.status, badUser.body.error.message]).toEqual([400, 'userId: must be a user id']);
    const badQuery = await request<{ error: { message: string } }>(
      herald.http,
      'GET',
      `/admin/api/users/${ann}/inbox?archived=maybe`,
      admin,
    );
    expect([badQuery.status, badQuery.body.error.message]).toEqual([400, 'archived must be true or false']);
    // A user token is not an admin session.
    const asUser = await request(herald.http, 'GET', `/admin/api/users/${ann}/inbox`, {
      apiKey: null,
      headers: { authorization: `Bearer ${userToken(ann)}` },
    });
    expect(asUser.status).toBe(401);
  });
});

describe('The inbox window holds retention (in-process, a retention of seconds)', () => {
  /** 3.6 s of retention (partitions of 1 s); the inbox lists items 8 s from publish. */
  const RETENTION_MS = 3_600;
  const INBOX_MS = 8_000;
  let herald: InProcessHerald;

  beforeAll(async () => {
    herald = await InProcessHerald.start('inboxret', {
      HERALD_RETENTION_HOURS: String(RETENTION_MS / 3_600_000),
      HERALD_INBOX_RETENTION_DAYS: String(INBOX_MS / 86_400_000),
    });
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('keeps a final notification listed until the inbox window passed all of its partition, then drops it with its state rows', async () => {
    const ann = `ann-${randomUUID().slice(0, 8)}`;
    const token = { apiKey: null, headers: { authorization: `Bearer ${userToken(ann)}` } };
    const socket = await TestClient.connect(herald.ws, userToken(ann));
    try {
      const { id } = await publish(herald.http, { to: { users: [ann] }, event: 'e', payload: {} });
      const publishedAt = Date.now();
      await socket.notification(id);
      await socket.ack(id);
      expect((await request(herald.http, 'POST', '/v1/me/read', { ...token, body: { ids: [id] } })).status).toBe(200);
      const states = async () =>
        (
          await herald.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM inbox_states WHERE notification_id = $1`,
            [id],
          )
        )[0]!.n;
      expect(await states()).toBe(1);

      // Final at once (acked), so retention alone would drop it about 3.6 s on; the inbox keeps it 8 s.
      await holdFor('past the retention, within the inbox window', publishedAt + RETENTION_MS + 2_000 - Date.now());
      const listed = await request<InboxPage>(herald.http, 'GET', '/v1/me/notifications', token);
      expect(listed.body.items.map((i) => [i.id, i.read])).toEqual([[id, true]]);

      await waitFor(
        'the partition to be dropped once the inbox window passed',
        async () => (await herald.db.query(`SELECT 1 FROM notifications WHERE id = $1`, [id])).length === 0,
        15_000,
      );
      expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(INBOX_MS);
      expect(await states()).toBe(0);
      expect((await request<InboxPage>(herald.http, 'GET', '/v1/me/notifications', token)).body.items).toEqual([]);
    } finally {
      await socket.close();
    }
  }, 40_000);
});
