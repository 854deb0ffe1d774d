import { randomUUID } from 'node:crypto';
import type { AdminConnectionsResponse, AdminSession } from '@herald/protocol';
import { keySlot } from '../../scripts/lib/redis-cluster';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { scrape } from '../helpers/metrics';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster';
import { repeatUntil, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const PASSWORD = 'cluster-admin-password';
/** Slots moved by the live reshard: the first ones of a master, among them replica 1's channel (see `prefixFor`). */
const RESHARD_SLOTS = 400;
/** The record's bound on a bus gap (docs/reliability.md): a notification reaches a connected user within it. */
const GAP_BOUND_MS = 2000;
/** The failover burst: a publish every BURST_GAP_MS for BURST_MS; the master is killed once this many answered. */
const BURST_MS = 4000;
const BURST_GAP_MS = 20;
const ANSWERED_BEFORE_KILL = 25;
/** During the reshard: a publish every RESHARD_GAP_MS until the slots have moved, and at least RESHARD_PUBLISHES. */
const RESHARD_GAP_MS = 25;
const RESHARD_PUBLISHES = 20;

type Master = { id: string; port: number; slots: [number, number][] };

const masterOfSlot = (masters: Master[], slot: number): Master => {
  const master = masters.find((m) => m.slots.some(([first, last]) => slot >= first && slot <= last));
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return master;
};

/**
 * A key prefix under which the two replicas' channels are on different masters (bus traffic on two shards),
 * replica 1's among the first RESHARD_SLOTS slots of its master, so the live reshard moves it.
 */
function prefixFor(masters: Master[], replicaIds: [string, string]): string {
  for (let i = 0; i < 100_000; i++) {
    const prefix = `rc${i}`;
    const [one, two] = replicaIds.map((id) => keySlot(`${prefix}:r:${id}`)) as [number, number];
    const a = masterOfSlot(masters, one);
    if (a === masterOfSlot(masters, two)) continue;
    const first = Math.min(...a.slots.map(([from]) => from));
    if (one >= first && one < first + RESHARD_SLOTS) return prefix;
  }
  throw new Error('no prefix found');
}

/**
 * Herald on a real Redis Cluster (3 masters, 3 replicas, started here): two replicas route through sharded
 * pub/sub on per-replica channels, survive a master's SIGKILL mid-burst and a reshard under traffic.
 */
describe('Herald on a Redis Cluster', () => {
  let redis: PrivateRedisCluster;
  let herald: TestCluster;
  let prefix: string;
  let session: string;
  const clients: TestClient[] = [];
  const r1 = () => herald.replicas[0]!;
  const r2 = () => herald.replicas[1]!;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const connect = async (url: string, userId: string, autoAck = false) => {
    const client = await TestClient.connect(url, userToken(userId), { autoAck });
    clients.push(client);
    return client;
  };
  /** SPUBLISH calls each master served since the cluster started, by port. */
  const spublishes = async (): Promise<Map<number, number>> => {
    const counts = new Map<number, number>();
    for (const master of await redis.masters()) {
      const stats = String(await redis.call(master.port, 'INFO', 'commandstats'));
      counts.set(master.port, Number(/cmdstat_spublish:calls=(\d+)/.exec(stats)?.[1] ?? 0));
    }
    return counts;
  };

  beforeAll(async () => {
    redis = await PrivateRedisCluster.create();
    prefix = prefixFor(await redis.masters(), ['rcluster-r1', 'rcluster-r2']);
    herald = await TestCluster.start('rcluster', 2, {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: redis.nodes,
      HERALD_REDIS_PREFIX: prefix,
      HERALD_ADMIN_PASSWORD: PASSWORD,
    });
    const login = await request<AdminSession>(r1().http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: PASSWORD },
    });
    session = login.body.token;
  }, 60_000);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await herald?.stop();
    await redis?.destroy();
  });

  it('delivers across replicas on two shards: direct with ack, redelivery, replay, topic and everyone', async () => {
    const before = await spublishes();
    const alice = user('alice');
    const bob = user('bob');
    const a = await connect(r1().ws, alice);
    const b = await connect(r2().ws, bob);

    // Publish on one replica, delivered on the other, both ways; acked.
    const toAlice = await publish(r2().http, { to: { users: [alice] }, event: 'direct', payload: { n: 1 } });
    const toBob = await publish(r1().http, { to: { users: [bob] }, event: 'direct', payload: { n: 2 } });
    expect((await a.notification(toAlice.id))[0]).toMatchObject({ id: toAlice.id, attempt: 1, payload: { n: 1 } });
    expect((await b.notification(toBob.id))[0]).toMatchObject({ id: toBob.id, attempt: 1 });
    expect(await a.ack(toAlice.id)).toMatchObject({ status: 'ok' });
    expect(await herald.deliveryOf(toAlice.id, alice)).toEqual({ status: 'acked', attempts: 1 });

    // Not acked: sent again after the ack timeout (the redelivery routes through presence as well).
    const [, again] = await b.notification(toBob.id, 2);
    expect(again).toMatchObject({ id: toBob.id, attempt: 2 });
    expect(await b.ack(toBob.id)).toMatchObject({ status: 'ok' });

    // Offline at publish, replayed on connect (on the replica that did not take the publish).
    const carol = user('carol');
    const offline = await publish(r1().http, { to: { users: [carol] }, event: 'while-away' });
    const c = await connect(r2().ws, carol);
    expect((await c.notification(offline.id))[0]).toMatchObject({ id: offline.id });

    // Topic and everyone: once to every replica on the broadcast channel.
    const topic = `t-${randomUUID().slice(0, 8)}`;
    expect(await a.command({ type: 'subscribe', channel: topic, id: 's1' })).toMatchObject({
      type: 'ack',
      status: 'ok',
    });
    expect(await b.command({ type: 'subscribe', channel: topic, id: 's2' })).toMatchObject({
      type: 'ack',
      status: 'ok',
    });
    const news = await publish(r1().http, { to: { topic }, event: 'news' });
    await a.notification(news.id);
    await b.notification(news.id);
    const all = await publish(r2().http, { to: { all: true }, event: 'everyone' });
    for (const client of [a, b, c]) await client.notification(all.id);

    // The bus spread over more than one shard: each replica's channel is on its own master.
    const after = await spublishes();
    const busy = [...after].filter(([port, n]) => n > (before.get(port) ?? 0));
    expect(busy.length).toBeGreaterThanOrEqual(2);
  });

  it('lists presence and the console connections of users whose keys are on every shard', async () => {
    const masters = await redis.masters();
    const users: string[] = [];
    const shards = new Set<number>();
    while (shards.size < masters.length || users.length < 6) {
      const id = user('p');
      users.push(id);
      shards.add(masterOfSlot(masters, keySlot(`${prefix}:user:${id}`)).port);
    }
    for (const [i, id] of users.entries()) await connect((i % 2 === 0 ? r1() : r2()).ws, id);
    const list = await request<AdminConnectionsResponse>(r2().http, 'GET', '/admin/api/connections', {
      apiKey: session,
    });
    expect(list.status).toBe(200);
    const listed = list.body.items.filter((item) => users.includes(item.userId));
    expect(listed.map((item) => [item.userId, item.replicaId]).sort()).toEqual(
      users.map((id, i) => [id, i % 2 === 0 ? r1().id : r2().id]).sort(),
    );
    // Sent to each through presence, whichever shard holds its entry.
    const sent = await publish(r1().http, { to: { users }, event: 'roll-call' });
    for (const client of clients) await client.notification(sent.id);
    const metrics = await scrape([r1().http, r2().http]);
    expect(metrics.get('herald_redis_subscriptions{subscriber="subscriber"}')).toBe(4);
    expect(metrics.get('herald_redis_cluster_ok')).toBe(2);
    expect(metrics.get('herald_redis_cluster_nodes{role="master",state="ready"}')).toBeGreaterThanOrEqual(2);
  });

  it('answers every publish within 5 s and loses nothing when a master is SIGKILLed mid-burst', async () => {
    const users = Array.from({ length: 8 }, (_, i) => user(`burst${i}`));
    for (const [i, id] of users.entries()) await connect((i % 2 === 0 ? r1() : r2()).ws, id, true);
    const victim = await redis.masterOf(`${prefix}:r:${r1().id}`);
    const sweepsBefore =
      (await scrape([r1().http, r2().http])).get('herald_jobs_total{outcome="completed",queue="sweep"}') ?? 0;
    const answers: { id?: string; userId: string; status: number; ms: number }[] = [];
    const burst = async (): Promise<void> => {
      const started = Date.now();
      let n = 0;
      const inFlight: Promise<void>[] = [];
      const send = (): void => {
        const userId = users[n % users.length]!;
        const base = n % 2 === 0 ? r1().http : r2().http;
        n += 1;
        const sent = Date.now();
        inFlight.push(
          fetch(`${base}/v1/notifications`, {
            method: 'POST',
            headers: { authorization: 'Bearer test-publisher-key-0123456789', 'content-type': 'application/json' },
            body: JSON.stringify({ to: { users: [userId] }, event: 'burst', payload: { n } }),
            signal: AbortSignal.timeout(10_000),
          }).then(
            async (response) => {
              const body = (await response.json()) as { id?: string };
              answers.push({ id: body.id, userId, status: response.status, ms: Date.now() - sent });
            },
            () => void answers.push({ userId, status: 0, ms: Date.now() - sent }),
          ),
        );
      };
      // One publish every BURST_GAP_MS, not waiting for the answers, until BURST_MS is over.
      await waitFor(
        `the ${BURST_MS} ms burst to end`,
        () => {
          if (Date.now() - started >= BURST_MS) return true;
          send();
          return false;
        },
        BURST_MS + 10_000,
        BURST_GAP_MS,
      );
      await Promise.all(inFlight);
    };
    const running = burst();
    // Mid-burst: once the first publishes have been answered.
    await waitFor('the burst to be under way', () => answers.length >= ANSWERED_BEFORE_KILL);
    await redis.kill(victim.port);
    const killedAt = Date.now();
    await running;
    const failoverMs = await redis.waitHealthy(30_000);

    expect(answers.filter((a) => a.status !== 202 && a.status !== 503)).toEqual([]);
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(5000);
    const accepted = answers.filter((a) => a.status === 202);
    const ids = accepted.map((a) => a.id!);
    let ackedAt = 0;
    await waitFor(
      'every accepted publish acked',
      async () => {
        const rows = await herald.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM deliveries WHERE notification_id = ANY($1::uuid[]) AND status = 'acked'`,
          [ids],
        );
        ackedAt = Date.now();
        return rows[0]!.n === ids.length;
      },
      30_000 - (Date.now() - killedAt),
      200,
    );
    const lost = ids.filter((id) => !clients.some((c) => c.notifications().some((f) => f.id === id)));
    expect(lost).toEqual([]);

    // Redelivery and the sweep run again by themselves.
    const late = user('late');
    const slow = await connect(r2().ws, late);
    const resend = await publish(r1().http, { to: { users: [late] }, event: 'after-failover' });
    expect((await slow.notification(resend.id, 2))[1]).toMatchObject({ attempt: 2 });
    await waitFor('a sweep completed after the failover', async () => {
      const now = (await scrape([r1().http, r2().http])).get('herald_jobs_total{outcome="completed",queue="sweep"}');
      return (now ?? 0) > sweepsBefore;
    });
    process.stdout.write(
      `${JSON.stringify({
        failover: {
          published: answers.length,
          accepted: accepted.length,
          refused503: answers.filter((a) => a.status === 503).length,
          slowestAnswerMs: Math.max(...answers.map((a) => a.ms)),
          clusterHealthyAfterBurstMs: failoverMs,
          allAckedAfterKillMs: ackedAt - killedAt,
          lost: lost.length,
        },
      })}\n`,
    );
    await redis.restart(victim.port);
  }, 90_000);

  it('keeps delivering within the gap bound while slots move (live reshard)', async () => {
    await redis.waitHealthy(30_000);
    const masters = await redis.masters();
    const source = masterOfSlot(masters, keySlot(`${prefix}:r:${r1().id}`));
    const target = masters.find((m) => m.id !== source.id)!;
    const users = Array.from({ length: 6 }, (_, i) => user(`move${i}`));
    const byUser = new Map<string, TestClient>();
    for (const [i, id] of users.entries()) byUser.set(id, await connect((i % 2 === 0 ? r1() : r2()).ws, id, true));
    const redirectsBefore = await scrape([r1().http, r2().http]);

    const sent = new Map<string, { at: number; userId: string }>();
    const reshard = redis.reshardAsync(source.id, target.id, RESHARD_SLOTS);
    let resharding = true;
    const reshardMs = reshard.done.finally(() => (resharding = false));
    let n = 0;
    const publishOne = async (): Promise<void> => {
      const userId = users[n % users.length]!;
      const at = Date.now();
      const { id } = await publish((n % 2 === 0 ? r1() : r2()).http, { to: { users: [userId] }, event: 'move' });
      sent.set(id, { at, userId });
      n += 1;
    };
    // Publishing through the move; a publish refused ends it, and the test with it.
    await repeatUntil(
      `the reshard to end, a publish every ${RESHARD_GAP_MS} ms meanwhile`,
      () => !resharding && n >= RESHARD_PUBLISHES,
      publishOne,
      60_000,
      RESHARD_GAP_MS,
    );
    const tookMs = await reshardMs;
    expect(masterOfSlot(await redis.masters(), keySlot(`${prefix}:r:${r1().id}`)).id).toBe(target.id);

    const late: { id: string; ms: number }[] = [];
    for (const [id, { at, userId }] of sent) {
      const client = byUser.get(userId)!;
      await client.notification(id, 1, 10_000);
      const received = client.receivedAt(id);
      if (received - at > GAP_BOUND_MS) late.push({ id, ms: received - at });
    }
    const after = await scrape([r1().http, r2().http]);
    const redirections =
      (after.get('herald_redis_redirections_total{kind="moved"}') ?? 0) +
      (after.get('herald_redis_redirections_total{kind="ask"}') ?? 0) -
      (redirectsBefore.get('herald_redis_redirections_total{kind="moved"}') ?? 0) -
      (redirectsBefore.get('herald_redis_redirections_total{kind="ask"}') ?? 0);
    process.stdout.write(
      `${JSON.stringify({ reshard: { slots: RESHARD_SLOTS, tookMs, published: sent.size, late, redirections } })}\n`,
    );
    expect(late).toEqual([]);
  }, 90_000);
});
