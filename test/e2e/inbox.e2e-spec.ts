import { randomUUID } from 'node:crypto';
import type {
  ErrorFrame,
  InboxPage,
  InboxStateResponse,
  ServerFrame,
  StateFrame,
  WelcomeFrame,
} from '@herald/protocol';
import { publish, request, userToken, type HttpResult } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { readEventStream } from '../helpers/sse';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * The synced inbox (issue 29) across two replicas behind Nginx: two devices of one user held by different
 * replicas agree on what is read and on the count; an offline device catches up from REST; an SSE device
 * gets the same state events; bad input gets exact errors. The rules one by one: inbox.int-spec.ts.
 */
describe('The synced inbox across two replicas behind Nginx', () => {
  let cluster: TestCluster;
  let edge: Edge;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const isState = (f: ServerFrame): f is StateFrame => f.type === 'state';

  const me = <T>(userId: string, method: string, path: string, body?: unknown): Promise<HttpResult<T>> =>
    request<T>(edge.http, method, `/v1/me/${path}`, {
      apiKey: null,
      headers: { authorization: `Bearer ${userToken(userId)}` },
      ...(body !== undefined ? { body } : {}),
    });
  /** The count as each replica answers it (the same record, whichever takes the request). */
  const counts = async (userId: string): Promise<number[]> =>
    Promise.all(
      cluster.replicas.map(
        async (r) =>
          (
            await request<{ unreadCount: number }>(r.http, 'GET', '/v1/me/unread-count', {
              apiKey: null,
              headers: { authorization: `Bearer ${userToken(userId)}` },
            })
          ).body.unreadCount,
      ),
    );
  /** A device of `userId` through Nginx with the inbox feature; `notOn`: on a replica other than this one. */
  const device = async (userId: string, notOn?: string): Promise<{ client: TestClient; replicaId: string }> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const client = await TestClient.connect(`${edge.ws}?features=inbox`, userToken(userId), {
        via: 'header',
        autoAck: true,
      });
      const welcome = client.frames.find((f): f is WelcomeFrame => f.type === 'welcome')!;
      if (welcome.replicaId !== notOn) {
        clients.push(client);
        return { client, replicaId: welcome.replicaId };
      }
      await client.close();
    }
    throw new Error('Nginx never placed the second device on the other replica');
  };

  beforeAll(async () => {
    cluster = await TestCluster.start('inbox', 2, { HERALD_TRUSTED_PROXIES: '127.0.0.1' });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it('two devices on two replicas: a read on one reaches the other within 1 s, the counts agree, and the device that was offline catches up from REST', async () => {
    const ann = user('ann');
    const phone = await device(ann);
    const laptop = await device(ann, phone.replicaId);
    expect(laptop.replicaId).not.toBe(phone.replicaId);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await publish(edge.http, { to: { users: [ann] }, event: 'order.shipped', payload: { i } })).id);
    await phone.client.notification(ids[2]!);
    await laptop.client.notification(ids[2]!);
    expect(await counts(ann)).toEqual([3, 3]);

    const asked = Date.now();
    expect(await phone.client.command({ type: 'read', ids: [ids[0]], id: 'r1' })).toEqual({
      type: 'ack',
      id: 'r1',
      status: 'ok',
    });
    const told = await laptop.client.next(isState, 1000);
    expect(Date.now() - asked).toBeLessThan(1000);
    expect(told).toEqual({ type: 'state', action: 'read', ids: [ids[0]], unreadCount: 2 });
    expect(await counts(ann)).toEqual([2, 2]);

    // The laptop goes offline; the phone reads everything, and one more comes.
    await laptop.client.close();
    const all = await me<{ unreadCount: number; throughSeq: number }>(ann, 'POST', 'read-all');
    expect(all.body.unreadCount).toBe(0);
    expect(await phone.client.next((f): f is StateFrame => isState(f) && f.action === 'readAll')).toMatchObject({
      throughSeq: all.body.throughSeq,
      unreadCount: 0,
    });
    const later = (await publish(edge.http, { to: { users: [ann] }, event: 'order.shipped', payload: { i: 3 } })).id;
    await phone.client.notification(later);

    // Back online, the laptop reads the list and the count, as the SDK does on connect.
    const back = await me<InboxPage>(ann, 'GET', 'notifications');
    expect(back.body.items.map((i) => [i.id, i.read])).toEqual([
      [later, false],
      [ids[2], true],
      [ids[1], true],
      [ids[0], true],
    ]);
    expect(await counts(ann)).toEqual([1, 1]);
  });

  it('sends the same state events to a device on Server-Sent Events through Nginx', async () => {
    const ann = user('ann');
    const id = (await publish(edge.http, { to: { users: [ann] }, event: 'e', payload: {} })).id;
    const controller = new AbortController();
    const response = await fetch(`${edge.http}/v1/stream?features=inbox`, {
      headers: { authorization: `Bearer ${userToken(ann)}` },
      signal: controller.signal,
    });
    const events: { event: string; data: string }[] = [];
    const stream = readEventStream(response, (event, data) => events.push({ event, data }));
    try {
      const welcome = await waitFor('the welcome event', () => events.find((e) => e.event === 'welcome'));
      expect((JSON.parse(welcome.data) as WelcomeFrame).features).toEqual(['inbox']);
      const phone = await device(ann);
      await phone.client.command({ type: 'archive', ids: [id], id: 'a1' });
      const state = await waitFor('the state event', () => events.find((e) => e.event === 'state'));
      expect(JSON.parse(state.data)).toEqual({ type: 'state', action: 'archive', ids: [id], unreadCount: 0 });
    } finally {
      controller.abort();
      await waitFor('the stream to end', () => stream.ended);
    }
  });

  it('answers bad input exactly: unknown ids, another user’s ids, too many ids', async () => {
    const ann = user('ann');
    const bob = user('bob');
    const mine = (await publish(edge.http, { to: { users: [ann] }, event: 'e', payload: {} })).id;
    const bobs = (await publish(edge.http, { to: { users: [bob] }, event: 'e', payload: {} })).id;
    const unknown = randomUUID();

    const rest = await me<InboxStateResponse>(ann, 'POST', 'read', { ids: [bobs, mine, unknown] });
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual({
      results: [
        { id: bobs, status: 'forbidden' },
        { id: mine, status: 'ok' },
        { id: unknown, status: 'forbidden' },
      ],
      unreadCount: 0,
    });
    const tooMany = Array.from({ length: 101 }, () => randomUUID());
    const refused = await me<{ error: { code: string; message: string } }>(ann, 'POST', 'archive', { ids: tooMany });
    expect([refused.status, refused.body.error]).toMatchObject([
      400,
      { code: 'BAD_REQUEST', message: 'ids: required: an array of 1-100 notification ids' },
    ]);

    const { client } = await device(ann);
    const forbidden = (await client.command({ type: 'unread', ids: [unknown, bobs], id: 'u1' })) as ErrorFrame;
    expect(forbidden).toMatchObject({ type: 'error', code: 'FORBIDDEN', id: 'u1' });
    expect(forbidden.ids).toEqual([unknown, bobs]);
    expect(await client.command({ type: 'unread', ids: tooMany, id: 'u2' })).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      id: 'u2',
      message: '"unread" needs "ids": an array of 1-100 notification ids',
    });
    // Nothing of bob's changed.
    const bobsView = await me<InboxPage>(bob, 'GET', 'notifications');
    expect(bobsView.body.items).toMatchObject([{ id: bobs, read: false, seen: false, archived: false }]);
  });
});
