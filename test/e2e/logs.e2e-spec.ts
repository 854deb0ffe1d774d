import { randomUUID } from 'node:crypto';
import { request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Replica, TEST_API_KEY } from '../helpers/replica';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

type Line = Record<string, unknown>;

function lines(replica: Replica): Line[] {
  return replica
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

function find(replicas: Replica[], match: (line: Line) => boolean): Line[] {
  return replicas.flatMap((r) => lines(r).filter(match));
}

/** What an operator follows: one line per request and per connection, and the request id end to end. */
describe('Operator logs', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.start('logs');
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('carries the X-Request-Id of a publish into the send on another replica and into its redelivery check', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const dana = `dana-${randomUUID().slice(0, 8)}`;
    const token = userToken(dana);
    const client = await TestClient.connect(r2.ws, token);
    const requestId = `trace-${randomUUID()}`;
    const published = await request<{ id: string }>(r1.http, 'POST', '/v1/notifications', {
      body: { to: { users: [dana] }, event: 'logs.trace', payload: {} },
      headers: { 'x-request-id': requestId },
    });
    expect(published.status).toBe(202);
    expect(published.headers.get('x-request-id')).toBe(requestId);
    // Sent, then redelivered (no ack): wait for the resend itself. A connection's replay racing the live
    // send can show the client attempt 1 twice, which is no redelivery.
    await client.next((f) => f.type === 'notification' && f.id === published.body.id && f.attempt === 2, 15_000);
    await client.ack(published.body.id);
    await client.close();
    const all = cluster.replicas;

    await waitFor('the request line', () => find([r1], (l) => l.message === 'request' && l.requestId === requestId)[0]);
    const [requestLine] = find([r1], (l) => l.message === 'request' && l.requestId === requestId);
    expect(requestLine).toMatchObject({
      method: 'POST',
      route: '/v1/notifications',
      status: 202,
      replica: r1.id,
    });
    expect(requestLine!.publisher).toMatch(/^pk_[0-9a-f]{12}$/);
    expect(typeof requestLine!.durationMs).toBe('number');
    // From the request context (nestjs-cls), not passed by hand: the request id and the publisher's key id.
    expect(find([r1], (l) => l.message === 'notification published')[0]).toMatchObject({
      requestId,
      publisher: requestLine!.publisher,
    });
    // These reach their files through pipes, after the client saw the frames: wait for them.
    await waitFor('the send line', () => find([r2], (l) => l.message === 'delivery sent' && l.attempt === 1)[0]);
    await waitFor('the redelivery line', () => find(all, (l) => l.message === 'redelivering')[0]);
    expect(find([r2], (l) => l.message === 'delivery sent' && l.attempt === 1)[0]).toMatchObject({
      requestId,
      userId: dana,
    });
    expect(find(all, (l) => l.message === 'redelivering')[0]).toMatchObject({ requestId, attempt: 2 });

    await waitFor('the close line', () => find([r2], (l) => l.message === 'connection closed')[0]);
    expect(find([r2], (l) => l.message === 'connection opened')[0]).toMatchObject({
      userId: dana,
      replica: r2.id,
      remoteAddress: '127.0.0.1',
    });
    const closed = find([r2], (l) => l.message === 'connection closed')[0]!;
    expect(closed).toMatchObject({ userId: dana, replica: r2.id, code: 1000, remoteAddress: '127.0.0.1' });
    expect(typeof closed.durationMs).toBe('number');

    // Neither the API key nor the user's token is in any line.
    for (const replica of all) {
      expect(replica.log()).not.toContain(TEST_API_KEY);
      expect(replica.log()).not.toContain(token);
    }
  });
});
