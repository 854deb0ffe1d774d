import { randomUUID } from 'node:crypto';
import type { NotificationFrame, PublishRequest, ServerFrame, WelcomeFrame } from '@herald/protocol';
import WebSocket from 'ws';
import { userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import type { TestDatabase } from '../helpers/database';
import { assertNothingLost, LossReport, Published } from '../helpers/loss-check';
import { moved, scrape } from '../helpers/metrics';
import { PrivatePostgres } from '../helpers/private-postgres';
import { PrivateRedis } from '../helpers/private-redis';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { FAST_TIMINGS, Replica, TEST_API_KEY } from '../helpers/replica';
import { holdFor, repeatUntil, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * Redis and PostgreSQL failing under live traffic. Every test ends with the
 * loss check: each notification that got a 202 is acked in PostgreSQL and was
 * seen by its recipient's client (deduplicated by id).
 */

const user = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;
/** The first Redis test's traffic: a publish every TRAFFIC_GAP_MS; this many before the fault, in it, after it. */
const TRAFFIC_GAP_MS = 40;
const TRAFFIC_SPELL = 20;
/** The pub/sub test's workers: each publishes, then waits BURST_GAP_MS. */
const BURST_GAP_MS = 25;
/** How long a loop of publishes may run at most: the longest test's timeout. */
const PUBLISHING_LIMIT_MS = 120_000;
/** The long outage: Redis down longer than BullMQ's drainDelay (~9 s, as the test's title says). */
const LONG_OUTAGE_MS = 9000;
/** Presence written before a crash is gone this long after it: its TTL (3 beats, presenceTtlMs), and a margin. */
const PRESENCE_GONE_MS = 3 * Number(FAST_TIMINGS.HERALD_PRESENCE_HEARTBEAT_MS) + 1500;
/** Measured bounds, printed once at the end of the file. */
const measured: Record<string, string | number> = {};

/** A connected user's app: records every notification and acks it, retrying an ack the store refused. */
class Inbox {
  /** Every notification id handed to this client, duplicates included. */
  readonly received: string[] = [];
  readonly firstSeenAt = new Map<string, number>();
  readonly attempts = new Map<string, number[]>();
  readonly ackErrors = new Map<string, number>();
  /** When each of the server's heartbeat pings arrived. */
  readonly pingsAt: number[] = [];
  private readonly acks = new Map<string, { confirmed: boolean; sentAt: number }>();
  private readonly heldIds = new Set<string>();
  private hold: ((frame: NotificationFrame) => boolean) | null = null;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly userId: string,
    readonly client: TestClient,
  ) {
    for (const frame of client.frames) this.onFrame(frame);
    client.socket.on('message', (data: WebSocket.RawData) => this.onFrame(JSON.parse(rawText(data)) as ServerFrame));
    client.socket.on('ping', () => this.pingsAt.push(Date.now()));
    // An ack that was refused (UNAVAILABLE, RATE_LIMITED) or never answered is sent again.
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const [id, state] of this.acks) if (!state.confirmed && now - state.sentAt > 1000) this.sendAck(id);
    }, 250);
  }

  static async open(url: string, userId: string, hold?: (frame: NotificationFrame) => boolean): Promise<Inbox> {
    const inbox = new Inbox(userId, await TestClient.connect(url, userToken(userId)));
    if (hold) inbox.holdAcks(hold);
    return inbox;
  }

  get welcome(): WelcomeFrame {
    return this.client.frames.find((f): f is WelcomeFrame => f.type === 'welcome')!;
  }

  get isOpen(): boolean {
    return this.client.socket.readyState === WebSocket.OPEN;
  }

  /** Notifications matching `hold` are recorded but not acked until `release()`. */
  holdAcks(hold: (frame: NotificationFrame) => boolean): void {
    this.hold = hold;
  }

  release(): void {
    this.hold = null;
    for (const id of this.heldIds) this.sendAck(id);
    this.heldIds.clear();
  }

  /** Resolves when send number `attempt` (or a later one) of `id` has arrived. */
  async attempt(id: string, attempt: number, timeoutMs: number): Promise<number> {
    return waitFor(
      `attempt ${attempt} of ${id} to reach ${this.userId}`,
      () => (this.attempts.get(id) ?? []).some((a) => a >= attempt) && Date.now(),
      timeoutMs,
      20,
    );
  }

  pendingAcks(): number {
    return [...this.acks.values()].filter((a) => !a.confirmed).length + this.heldIds.size;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.client.close();
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.type === 'notification') {
      this.received.push(frame.id);
      if (!this.firstSeenAt.has(frame.id)) this.firstSeenAt.set(frame.id, Date.now());
      this.attempts.set(frame.id, [...(this.attempts.get(frame.id) ?? []), frame.attempt]);
      if (this.hold?.(frame)) this.heldIds.add(frame.id);
      // Every copy is acked, one acked before too (as the SDK does): an ack lost in a PostgreSQL crash
      // (acks commit asynchronously) is why a copy comes again.
      else this.sendAck(frame.id);
    } else if (frame.type === 'ack' && this.acks.has(frame.id)) {
      this.acks.get(frame.id)!.confirmed = true;
    } else if (frame.type === 'error' && frame.id !== undefined && this.acks.has(frame.id)) {
      this.ackErrors.set(frame.code, (this.ackErrors.get(frame.code) ?? 0) + 1);
      // Retried by the timer, 500 ms from now.
      this.acks.get(frame.id)!.sentAt = Date.now() - 500;
    }
  }

  private sendAck(id: string): void {
    const state = this.acks.get(id) ?? { confirmed: false, sentAt: 0 };
    state.sentAt = Date.now();
    this.acks.set(id, state);
    if (this.client.socket.readyState === WebSocket.OPEN) this.client.send({ type: 'ack', id });
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

interface Attempt {
  status: number;
  id?: string;
  recipients?: number;
  code?: string;
  elapsedMs: number;
  /** Set when no answer came within the bound: a hang. */
  error?: string;
  at: number;
}

/** One publish, bounded: a hang shows as `status: 0` with an error rather than blocking the test. */
async function tryPublish(base: string, body: PublishRequest, timeoutMs = 15_000): Promise<Attempt> {
  const started = Date.now();
  try {
    const response = await fetch(`${base}/v1/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    const parsed = (text ? JSON.parse(text) : {}) as { id?: string; recipients?: number; error?: { code?: string } };
    return {
      status: response.status,
      id: parsed.id,
      recipients: parsed.recipients,
      code: parsed.error?.code,
      elapsedMs: Date.now() - started,
      at: Date.now(),
    };
  } catch (error) {
    return { status: 0, error: (error as Error).message, elapsedMs: Date.now() - started, at: Date.now() };
  }
}

/** The (notification, user) pairs a 202 promised. */
function promised(attempt: Attempt, users: string[]): Published[] {
  return attempt.status === 202 && attempt.id ? users.map((userId) => ({ id: attempt.id!, userId })) : [];
}

function receivedBy(inboxes: Inbox[]): Map<string, string[]> {
  const received = new Map<string, string[]>();
  for (const inbox of inboxes) received.set(inbox.userId, [...(received.get(inbox.userId) ?? []), ...inbox.received]);
  return received;
}

/**
 * Waits (bounded) until every promised delivery is acked, then runs the loss
 * check; a timeout still reports the loss check's list of what is missing.
 */
async function settleAndCheck(
  db: Pick<TestDatabase, 'query'>,
  published: Published[],
  inboxes: Inbox[],
  timeoutMs: number,
): Promise<LossReport> {
  const ids = [...new Set(published.map((p) => p.id))];
  let timedOut: Error | undefined;
  try {
    await waitFor(
      `all ${published.length} promised deliveries to be acked`,
      async () =>
        (
          await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM deliveries WHERE notification_id = ANY($1::uuid[]) AND status <> 'acked'`,
            [ids],
          )
        )[0]?.n === 0,
      timeoutMs,
      200,
    );
  } catch (error) {
    timedOut = error as Error;
  }
  const report = await assertNothingLost(db as TestDatabase, published, receivedBy(inboxes));
  if (timedOut) throw timedOut;
  expect(report).toEqual({ published: published.length, acked: published.length, expired: 0, failed: 0 });
  return report;
}

async function readyStatus(replica: Replica): Promise<number> {
  return (await fetch(`${replica.http}/health/ready`, { signal: AbortSignal.timeout(5000) })).status;
}

/** Sum of the `sweep` log lines' counts written by these replicas after `since` (log offset). */
function sweepCounts(replicas: Replica[], since: Map<string, number>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const replica of replicas) {
    for (const line of replica
      .log()
      .slice(since.get(replica.id) ?? 0)
      .split('\n')) {
      if (!line.includes('"sweep"')) continue;
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.message !== 'sweep') continue;
        for (const key of ['resent', 'parked', 'postponed', 'failed', 'expired']) {
          if (typeof entry[key] === 'number') total[key] = (total[key] ?? 0) + entry[key];
        }
      } catch {
        // not a JSON line
      }
    }
  }
  return total;
}

/** True when each inbox's connection is in its user's presence hash, held by the given replica. */
async function presenceWritten(redis: PrivateRedis, prefix: string, held: [Inbox, Replica][]): Promise<boolean> {
  for (const [inbox, replica] of held) {
    const key = `${prefix}:user:${inbox.userId}`;
    if ((await redis.call('HGET', key, inbox.welcome.connectionId)) !== replica.id) return false;
  }
  return true;
}

function logOffsets(replicas: Replica[]): Map<string, number> {
  return new Map(replicas.map((r) => [r.id, r.log().length]));
}

/**
 * Steps of one test that may fail independently: each failure is recorded
 * and the test asserts at its end that there were none, so one broken
 * guarantee does not hide the others.
 */
class Findings {
  readonly problems: string[] = [];

  async step<T>(label: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      this.problems.push(`${label}: ${(error as Error).message}`);
      return undefined;
    }
  }
}

/** The PostgreSQL side of deliveries, for failure messages: parked = open with no next attempt. */
async function explain(db: Pick<TestDatabase, 'query'>, pairs: Published[]): Promise<string> {
  if (pairs.length === 0) return '';
  const rows = await db.query<{ id: string; user_id: string; status: string; attempts: number; parked: boolean }>(
    `SELECT notification_id::text AS id, user_id, status, attempts,
            (next_attempt_at IS NULL AND status IN ('pending', 'sent')) AS parked
       FROM deliveries WHERE notification_id = ANY($1::uuid[])`,
    [[...new Set(pairs.map((p) => p.id))]],
  );
  const wanted = new Set(pairs.map((p) => `${p.id}/${p.userId}`));
  const states = rows
    .filter((r) => wanted.has(`${r.id}/${r.user_id}`))
    .map((r) => `${r.status}/attempts=${r.attempts}${r.parked ? '/PARKED' : ''}`);
  const counts = new Map<string, number>();
  for (const state of states) counts.set(state, (counts.get(state) ?? 0) + 1);
  return ` [PostgreSQL: ${[...counts].map(([state, n]) => `${n}× ${state}`).join(', ')}]`;
}

/** `work`, with the PostgreSQL state of `pairs` added to its error. */
async function explained<T>(
  db: Pick<TestDatabase, 'query'>,
  pairs: Published[] | (() => Published[]),
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const now = typeof pairs === 'function' ? pairs() : pairs;
    throw new Error(`${(error as Error).message}${await explain(db, now).catch(() => '')}`, { cause: error });
  }
}

afterAll(() => {
  // The numbers the fault bounds are written from.
  process.stdout.write(`infra-faults measurements:\n${JSON.stringify(measured, null, 2)}\n`);
});

describe('Redis faults under traffic (2 replicas, private Redis)', () => {
  let redis: PrivateRedis;
  let cluster: TestCluster;
  let inboxes: Inbox[] = [];
  const r1 = (): Replica => cluster.replicas[0]!;
  const r2 = (): Replica => cluster.replicas[1]!;
  const open = async (replica: Replica, label: string, hold?: (f: NotificationFrame) => boolean): Promise<Inbox> => {
    const inbox = await Inbox.open(replica.ws, user(label), hold);
    inboxes.push(inbox);
    return inbox;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.create();
    cluster = await TestCluster.start('infraredis', 2, { REDIS_URL: redis.url });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(inboxes.map((i) => i.close().catch(() => undefined)));
    inboxes = [];
    // A test that failed mid-outage must not leave the next one without Redis.
    if (!redis.running) await redis.start();
    await Promise.all(
      cluster.replicas.map((r) =>
        waitFor(`${r.id} ready again`, async () => (await readyStatus(r)) === 200, 20_000, 200),
      ),
    );
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.kill();
  }, 30_000);

  it('Redis SIGKILLed and restarted empty during traffic: 202s while down, all delivered after, presence rebuilt by heartbeats, a check that could not resend while Redis was away re-routed by the sweep (attempt 2)', async () => {
    const alice = await open(r1(), 'alice');
    const bob = await open(r2(), 'bob');
    const carol = await open(r1(), 'carol', (f) => f.event === 'hold');
    const findings = new Findings();
    const published: Published[] = [];
    const attempts: { attempt: Attempt; phase: 'before' | 'down' | 'after'; userId: string }[] = [];
    let phase: 'before' | 'down' | 'after' = 'before';

    // Traffic: alternating users and replicas, one publish every ~40 ms, until told to stop.
    let traffic = true;
    let i = 0;
    const loop = waitFor(
      'the traffic to be stopped',
      async () => {
        if (!traffic) return true;
        const target = i % 2 === 0 ? alice : bob;
        const via = i % 3 === 0 ? r1() : r2();
        const at = phase;
        const attempt = await tryPublish(via.http, {
          to: { users: [target.userId] },
          event: 'traffic',
          payload: { i },
        });
        i += 1;
        attempts.push({ attempt, phase: at, userId: target.userId });
        published.push(...promised(attempt, [target.userId]));
        return false;
      },
      PUBLISHING_LIMIT_MS,
      TRAFFIC_GAP_MS,
    );
    /** Waits for `count` more publishes of the traffic, answered, in phase `during`. */
    const trafficIn = (during: typeof phase, count: number) => {
      const from = attempts.filter((a) => a.phase === during).length;
      return waitFor(
        `${count} more publishes of traffic (${during} the outage)`,
        () => attempts.filter((a) => a.phase === during).length >= from + count,
        15_000,
      );
    };
    try {
      await trafficIn('before', TRAFFIC_SPELL);
      // A send whose "was it acked?" check comes due while Redis is away: kill Redis right after attempt 1.
      const held = await tryPublish(r2().http, { to: { users: [carol.userId] }, event: 'hold' });
      expect(held.status).toBe(202);
      published.push(...promised(held, [carol.userId]));
      await carol.attempt(held.id!, 1, 10_000);
      const sinceKill = logOffsets(cluster.replicas);
      await redis.kill();
      phase = 'down';
      const killedAt = Date.now();
      expect(await cluster.waitRecorded(held.id!, carol.userId)).toMatchObject({ status: 'sent', attempts: 1 });

      await waitFor('replicas to see Redis down', async () => (await readyStatus(r1())) === 503, 10_000, 100);
      // Its check comes due in the outage and fails (no presence, no bus: the replica logs it); traffic goes on.
      await waitFor(
        'the check of the held send to fail while Redis is away',
        () => cluster.replicas.some((r) => r.log().slice(sinceKill.get(r.id)).includes('redelivery checks failed')),
        10_000,
      );
      await trafficIn('down', TRAFFIC_SPELL);
      // Nothing is resent while Redis is away: still attempt 1 (its check ran, but found no presence or bus).
      expect(carol.attempts.get(held.id!)).toEqual([1]);

      const sinceRestart = logOffsets(cluster.replicas);
      await redis.start();
      phase = 'after';
      const restartedAt = Date.now();
      measured['redis restart: outage (ms)'] = restartedAt - killedAt;

      // Presence of the clients that stayed connected, rebuilt by the replicas' heartbeats.
      await findings.step('presence rebuilt', async () => {
        const at = await waitFor(
          'presence of the 3 connected clients to be rebuilt in the empty Redis',
          async () =>
            (await presenceWritten(redis, cluster.redisPrefix, [
              [alice, r1()],
              [bob, r2()],
              [carol, r1()],
            ])) && Date.now(),
          10_000,
          100,
        );
        measured['redis restart: presence rebuilt after restart (ms)'] = at - restartedAt;
      });

      // The check that could not resend: the sweep finds the overdue delivery and sends attempt 2.
      await findings.step('attempt 2 of the send whose check could not resend while Redis was away', async () => {
        const at = await explained(cluster.db, promised(held, [carol.userId]), () =>
          carol.attempt(held.id!, 2, 10_000),
        );
        measured['redis restart: attempt 2 of the send whose check failed, after restart (ms)'] = at - restartedAt;
      });
      carol.release();

      await trafficIn('after', TRAFFIC_SPELL);
      traffic = false;
      await loop;

      const down = attempts.filter((a) => a.phase === 'down');
      measured['redis restart: publishes answered 202 while down'] = down.filter(
        (a) => a.attempt.status === 202,
      ).length;
      expect(down.length).toBeGreaterThan(0);
      // Every answer is 202, whatever Redis was doing: the record is PostgreSQL.
      expect(attempts.filter((a) => a.attempt.status !== 202)).toEqual([]);

      await findings.step('publishes made while Redis was down delivered after it is back', async () => {
        const pairs = down.flatMap((a) => promised(a.attempt, [a.userId]));
        const seen = (id: string) => alice.firstSeenAt.get(id) ?? bob.firstSeenAt.get(id);
        const missing = () => pairs.filter((p) => seen(p.id) === undefined);
        await explained(cluster.db, missing, () =>
          waitFor(
            `all ${pairs.length} publishes made while Redis was down to reach their clients`,
            () => missing().length === 0,
            10_000,
          ),
        ).catch((error: Error) => {
          throw new Error(`${missing().length} of ${pairs.length} never arrived: ${error.message}`, { cause: error });
        });
        measured['redis restart: last publish made while down delivered after restart (ms)'] =
          Math.max(...pairs.map((p) => seen(p.id)!)) - restartedAt;
      });

      await findings.step('loss check', async () => {
        const report = await settleAndCheck(cluster.db, published, inboxes, 10_000);
        measured['redis restart: loss check'] = JSON.stringify(report);
      });
      // Parked > 0 here, with everyone connected, is the sweep running before presence was rebuilt.
      measured['redis restart: sweep outcomes after restart'] = JSON.stringify(
        sweepCounts(cluster.replicas, sinceRestart),
      );
      expect([alice, bob, carol].every((i) => i.isOpen)).toBe(true);
      expect(findings.problems).toEqual([]);
    } finally {
      traffic = false;
      await loop;
    }
  }, 90_000);

  it('Redis pub/sub connections killed (CLIENT KILL TYPE pubsub) twice during a burst of 200: every lost bus message is caught up on the return', async () => {
    // Held by replica 2, published through replica 1: every notification crosses the bus.
    const users = await Promise.all([0, 1, 2, 3].map((i) => open(r2(), `burst${i}`)));
    const since = logOffsets(cluster.replicas);
    const published: Published[] = [];
    const acceptedAt = new Map<string, number>();
    const answers: Attempt[] = [];
    const total = 200;
    const killAt = new Set([60, 130]);
    const kills: { index: number; killed: number; at: number; subscribersBackMs?: number }[] = [];
    // The replicas' bus subscriber connections (named herald:<replica>:subscriber) in pub/sub mode.
    const subscribers = async (): Promise<string[]> =>
      String(await redis.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => / flags=\S*P/.test(line) && /name=herald:\S+:subscriber /.test(line))
        .map((line) => /name=(\S+)/.exec(line)![1]!);
    const bothSubscribed = () =>
      waitFor(
        'both replicas to subscribe again',
        async () => (await subscribers()).length >= 2 && Date.now(),
        10_000,
        20,
      );
    await bothSubscribed();
    let next = 0;
    const publishNext = async (): Promise<void> => {
      const index = next++;
      if (killAt.has(index)) {
        // Each kill drops subscribers that are there (the previous kill's have come back).
        await bothSubscribed();
        const killed = Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
        const kill: (typeof kills)[number] = { index, killed, at: Date.now() };
        kills.push(kill);
        void bothSubscribed().then((at) => (kill.subscribersBackMs = at - kill.at));
      }
      const target = users[index % users.length]!;
      const attempt = await tryPublish(r1().http, {
        to: { users: [target.userId] },
        event: 'burst',
        payload: { index },
      });
      answers.push(attempt);
      if (attempt.status === 202) acceptedAt.set(attempt.id!, attempt.at);
      published.push(...promised(attempt, [target.userId]));
    };
    // Each worker publishes the next one, BURST_GAP_MS after its last, until all are taken; a failure ends it.
    const worker = async (): Promise<void> => {
      await repeatUntil(
        'the burst to be published',
        () => next >= total,
        publishNext,
        PUBLISHING_LIMIT_MS,
        BURST_GAP_MS,
      );
    };
    const burstStarted = Date.now();
    await Promise.all(Array.from({ length: 8 }, () => worker()));
    measured['pubsub drop: burst duration (ms)'] = Date.now() - burstStarted;

    expect(answers.filter((a) => a.status !== 202)).toEqual([]);
    expect(kills).toHaveLength(2);
    // Each kill hit the bus subscriber connection of both replicas.
    for (const k of kills) expect(k.killed).toBeGreaterThanOrEqual(2);

    const ids = [...acceptedAt.keys()];
    await waitFor(
      'every burst notification to reach its client',
      () => ids.every((id) => users.some((u) => u.firstSeenAt.has(id))),
      30_000,
      50,
    );
    const seenAt = (id: string): number => Math.min(...users.map((u) => u.firstSeenAt.get(id) ?? Infinity));
    const latencies = ids.map((id) => seenAt(id) - acceptedAt.get(id)!);
    const lastKill = Math.max(...kills.map((k) => k.at));
    measured['pubsub drop: slowest 202 → first receipt (ms)'] = Math.max(...latencies);
    measured['pubsub drop: notifications slower than 500 ms'] = latencies.filter((l) => l > 500).length;
    measured['pubsub drop: last kill → last notification received (ms)'] = Math.max(...ids.map(seenAt)) - lastKill;

    const report = await settleAndCheck(cluster.db, published, inboxes, 30_000);
    measured['pubsub drop: loss check'] = JSON.stringify(report);
    const swept = sweepCounts(cluster.replicas, since);
    measured['pubsub drop: sweep outcomes during the test'] = JSON.stringify(swept);
    // The kills did lose bus messages, and the replicas read them from the record on the subscriber's return.
    expect(cluster.replicas.some((r) => r.log().includes('"message":"bus catch-up done"'))).toBe(true);
    measured['pubsub drop: subscribers back after each kill (ms)'] = kills.map((k) => k.subscribersBackMs).join(', ');
    measured['pubsub drop: duplicates received'] = users.reduce(
      (n, u) => n + u.received.length - new Set(u.received).size,
      0,
    );
  }, 90_000);

  it('Redis down longer than BullMQ drainDelay (~9 s): redelivery checks and the sweep worker resume by themselves', async () => {
    const dana = await open(r1(), 'dana', (f) => f.event === 'hold');
    const findings = new Findings();
    const published: Published[] = [];

    await redis.kill();
    const killedAt = Date.now();
    await waitFor('replica 2 to see Redis down', async () => (await readyStatus(r2())) === 503, 10_000, 100);
    const during = await tryPublish(r2().http, { to: { users: [dana.userId] }, event: 'during.outage' });
    expect(during.status).toBe(202);
    published.push(...promised(during, [dana.userId]));
    const outageLeft = LONG_OUTAGE_MS - (Date.now() - killedAt);
    if (outageLeft > 0) await holdFor("an outage longer than BullMQ's drainDelay", outageLeft);

    const sinceRestart = logOffsets(cluster.replicas);
    await redis.start();
    const restartedAt = Date.now();
    measured['long redis outage: outage (ms)'] = restartedAt - killedAt;
    // Counters live in the replica processes, so they survive the Redis restart.
    const base = await scrape(cluster.replicas.map((r) => r.http));

    // Once the user's presence is back, a send after the restart that is not acked is sent
    // again: the replica's redelivery timer checked it (it needs Redis for the resend: presence, the bus).
    await findings.step('redelivery checks resumed', async () => {
      await waitFor(
        'presence of the connected client to be rebuilt',
        async () =>
          (await redis.call('HGET', `${cluster.redisPrefix}:user:${dana.userId}`, dana.welcome.connectionId)) ===
          r1().id,
        20_000,
        100,
      );
      const after = await tryPublish(r1().http, { to: { users: [dana.userId] }, event: 'hold' });
      expect(after.status).toBe(202);
      published.push(...promised(after, [dana.userId]));
      await explained(cluster.db, promised(after, [dana.userId]), async () => {
        await dana.attempt(after.id!, 1, 20_000);
        const second = await dana.attempt(after.id!, 2, 20_000);
        measured['long redis outage: attempt 2 of a send after restart, after restart (ms)'] = second - restartedAt;
      });
      dana.release();
      // A timer's check ran: it resent, or (the replica's bus subscription back after its presence, as under
      // load) found no replica to take the resend and left it to the sweep, which sent attempt 2.
      const counts = await waitFor(
        'a redelivery check to run and a sweep to complete after the restart',
        async () => {
          const counts = moved(base, await scrape(cluster.replicas.map((r) => r.http)), [
            'herald_redelivery_checks_total{outcome="resent"}',
            'herald_redelivery_checks_total{outcome="postponed"}',
            'herald_jobs_total{outcome="completed",queue="sweep"}',
          ]);
          const checked =
            counts['herald_redelivery_checks_total{outcome="resent"}']! +
            counts['herald_redelivery_checks_total{outcome="postponed"}']!;
          return checked > 0 && counts['herald_jobs_total{outcome="completed",queue="sweep"}']! > 0 && counts;
        },
        20_000,
        250,
      );
      measured['long redis outage: jobs completed after restart'] = JSON.stringify(counts);
    });
    dana.release();

    // The sweep worker: the publish made while Redis was down is routed to the connected client.
    await findings.step('publish made while Redis was down delivered (sweep worker resumed)', async () => {
      const at = await explained(cluster.db, promised(during, [dana.userId]), () =>
        dana.attempt(during.id!, 1, 15_000),
      );
      measured['long redis outage: publish made while down delivered after restart (ms)'] = at - restartedAt;
    });

    await findings.step('loss check', async () => {
      const report = await settleAndCheck(cluster.db, published, inboxes, 10_000);
      measured['long redis outage: loss check'] = JSON.stringify(report);
    });
    measured['long redis outage: sweep outcomes after restart'] = JSON.stringify(
      sweepCounts(cluster.replicas, sinceRestart),
    );
    expect(dana.isOpen).toBe(true);
    expect(findings.problems).toEqual([]);
  }, 120_000);
});

describe('Redis restarted with its data (2 replicas, private Redis with an append-only file)', () => {
  let redis: PrivateRedis;
  let cluster: TestCluster;
  let inboxes: Inbox[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.create({ persistent: true });
    cluster = await TestCluster.start('infraaof', 2, { REDIS_URL: redis.url });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(inboxes.map((i) => i.close().catch(() => undefined)));
    inboxes = [];
  });

  afterAll(async () => {
    await cluster?.stop();
    await redis?.destroy();
  }, 30_000);

  it('Redis SIGKILLed and restarted with its data, down longer than the presence TTL: a send checked during the outage is resent after it, presence comes back, parked deliveries of connected users are resumed, nothing lost', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const erin = await Inbox.open(r1.ws, user('erin'));
    const finn = await Inbox.open(r2.ws, user('finn'), (f) => f.event === 'hold');
    inboxes.push(erin, finn);
    const published: Published[] = [];

    // A send whose check comes due while Redis is down: it cannot resend then; the sweep does afterwards.
    const held = await tryPublish(r1.http, { to: { users: [finn.userId] }, event: 'hold' });
    expect(held.status).toBe(202);
    published.push(...promised(held, [finn.userId]));
    await finn.attempt(held.id!, 1, 10_000);
    await redis.kill();
    await waitFor('replicas to see Redis down', async () => (await readyStatus(r1)) === 503, 10_000, 100);
    const down: Attempt[] = [];
    for (let i = 0; i < 10; i++) {
      const attempt = await tryPublish(i % 2 ? r1.http : r2.http, { to: { users: [erin.userId] }, event: 'down' });
      down.push(attempt);
      published.push(...promised(attempt, [erin.userId]));
    }
    expect(down.map((a) => a.status)).toEqual(Array(10).fill(202));
    // Longer than 3 presence beats: the presence entries written before the crash have expired when it is back.
    await holdFor('the presence entries written before the crash to expire', PRESENCE_GONE_MS);
    await redis.start();
    const restartedAt = Date.now();
    await Promise.all(
      cluster.replicas.map((r) =>
        waitFor(`${r.id} ready again`, async () => (await readyStatus(r)) === 200, 20_000, 200),
      ),
    );

    const presenceAt = await waitFor(
      'presence of both connected clients to be written again',
      async () =>
        (await presenceWritten(redis, cluster.redisPrefix, [
          [erin, r1],
          [finn, r2],
        ])) && Date.now(),
      10_000,
      100,
    );
    measured['redis restart with data: presence back after restart (ms)'] = presenceAt - restartedAt;
    const secondAt = await explained(cluster.db, promised(held, [finn.userId]), () =>
      finn.attempt(held.id!, 2, 15_000),
    );
    measured['redis restart with data: attempt 2 of the send made before the crash, after restart (ms)'] =
      secondAt - restartedAt;
    finn.release();
    await explained(
      cluster.db,
      () => published.filter((p) => p.userId === erin.userId && !erin.firstSeenAt.has(p.id)),
      () =>
        waitFor(
          'every publish made while Redis was down to reach erin',
          () => down.every((a) => erin.firstSeenAt.has(a.id!)),
          15_000,
        ),
    );
    const report = await settleAndCheck(cluster.db, published, inboxes, 15_000);
    measured['redis restart with data: loss check'] = JSON.stringify(report);
    expect(report.acked).toBe(published.length);
    expect([erin, finn].every((i) => i.isOpen)).toBe(true);
  }, 90_000);
});

describe('PostgreSQL faults under traffic (2 replicas, private PostgreSQL)', () => {
  let pg: PrivatePostgres;
  let db: Pick<TestDatabase, 'query'>;
  const prefix = testRedisPrefix('infrapg');
  const replicas: Replica[] = [];
  // Longer than the tests' 1 s: the crash burst keeps this process (its clients) busy for about a second,
  // long enough for a 1 s heartbeat to reap a client whose pong was merely late.
  const HEARTBEAT_MS = 2500;
  let inboxes: Inbox[] = [];
  const open = async (replica: Replica, label: string, hold?: (f: NotificationFrame) => boolean): Promise<Inbox> => {
    const inbox = await Inbox.open(replica.ws, user(label), hold);
    inboxes.push(inbox);
    return inbox;
  };
  let pgDown = false;

  beforeAll(async () => {
    pg = await PrivatePostgres.create();
    db = { query: <T>(sql: string, params?: unknown[]) => pg.query<T>(sql, params) };
    for (const id of ['infrapg-r1', 'infrapg-r2'])
      replicas.push(
        await Replica.create(id, {
          databaseUrl: pg.url,
          redisPrefix: prefix,
          HERALD_HEARTBEAT_MS: String(HEARTBEAT_MS),
        }),
      );
    await Promise.all(replicas.map((r) => r.start()));
  }, 90_000);

  afterEach(async () => {
    await Promise.all(inboxes.map((i) => i.close().catch(() => undefined)));
    inboxes = [];
    if (pgDown) {
      await pg.startAsync();
      pgDown = false;
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop().catch(() => undefined)));
    await pg?.destroy();
    await deleteRedisPrefix(prefix);
  }, 30_000);

  it('PostgreSQL stopped: publish answers 503 within 5 s, not ready, WebSockets stay open and answer ping; after restart publishing works and every earlier 202 is delivered and acked', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    const alice = await open(r1, 'alice');
    const bob = await open(r2, 'bob', (f) => f.event === 'held');
    const published: Published[] = [];
    const both = [alice.userId, bob.userId];

    for (let i = 0; i < 4; i++) {
      const ok = await tryPublish(i % 2 ? r1.http : r2.http, { to: { users: both }, event: 'before', payload: { i } });
      expect(ok.status).toBe(202);
      published.push(...promised(ok, both));
    }
    // Delivered but not acked when PostgreSQL goes: its ack has to wait for the restart.
    const held = await tryPublish(r1.http, { to: { users: [bob.userId] }, event: 'held' });
    expect(held.status).toBe(202);
    published.push(...promised(held, [bob.userId]));
    await bob.attempt(held.id!, 1, 10_000);
    await waitFor('the acked ones to be acked', () => alice.pendingAcks() === 0, 10_000);

    await pg.stopAsync();
    pgDown = true;
    const stoppedAt = Date.now();
    bob.release(); // answered UNAVAILABLE until PostgreSQL is back, and retried

    const refused: Attempt[] = [];
    for (const replica of [r1, r2, r1, r2]) {
      refused.push(await tryPublish(replica.http, { to: { users: both }, event: 'during' }, 30_000));
    }
    measured['pg stopped: 503 latency (ms, each)'] = refused.map((a) => a.elapsedMs).join(', ');
    for (const a of refused) {
      expect(a).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
      expect(a.elapsedMs).toBeLessThan(5000);
    }
    for (const replica of replicas) expect(await readyStatus(replica)).not.toBe(200);

    // Sockets stay open through the outage, past several heartbeats, and answer commands.
    for (const inbox of [alice, bob]) {
      expect(await inbox.client.command({ type: 'ping', id: `p-${inbox.userId}` })).toMatchObject({ type: 'pong' });
    }
    // Two heartbeats since the stop: each socket's liveness was checked, and it was pinged, not closed.
    await waitFor(
      'two heartbeat pings to each socket since PostgreSQL stopped',
      () => [alice, bob].every((inbox) => inbox.pingsAt.filter((at) => at >= stoppedAt).length >= 2),
      4 * HEARTBEAT_MS + 5000,
    );
    for (const inbox of [alice, bob]) {
      expect(inbox.isOpen).toBe(true);
      expect(await inbox.client.command({ type: 'ping', id: `q-${inbox.userId}` })).toMatchObject({ type: 'pong' });
    }
    expect(bob.ackErrors.get('UNAVAILABLE') ?? 0).toBeGreaterThan(0);

    await pg.startAsync();
    pgDown = false;
    const startedAt = Date.now();
    // Publishing works again once the pool reconnects; until then only 503s.
    const recovered = await waitFor(
      'a publish to be accepted again',
      async () => {
        const attempt = await tryPublish(r2.http, { to: { users: both }, event: 'after' });
        if (attempt.status !== 202) expect(attempt.status).toBe(503);
        return attempt.status === 202 && attempt;
      },
      20_000,
      200,
    );
    measured['pg stopped: first 202 after restart (ms)'] = Date.now() - startedAt;
    published.push(...promised(recovered, both));
    const afterOther = await tryPublish(r1.http, { to: { users: both }, event: 'after' });
    expect(afterOther.status).toBe(202);
    published.push(...promised(afterOther, both));

    const report = await settleAndCheck(db, published, inboxes, 30_000);
    measured['pg stopped: loss check'] = JSON.stringify(report);
    // Nothing refused was stored.
    expect(
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE event = 'during'`))[0]!.n,
    ).toBe(0);
    expect(alice.isOpen && bob.isOpen).toBe(true);
  }, 90_000);

  it('PostgreSQL crashed (immediate stop) during 300 concurrent multi-recipient publishes: every 202 complete, nothing half-written, the rest 503, all 202s acked', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    const users = [await open(r1, 'u0'), await open(r2, 'u1'), await open(r1, 'u2'), await open(r2, 'u3')];
    const recipientsOf = (i: number): string[] => [0, 1, 2].map((k) => users[(i + k) % users.length]!.userId);
    const total = 300;
    let answered = 0;
    let accepted = 0;
    let crash: Promise<void> | undefined;
    let inFlightAtCrash = 0;
    const results: { attempt: Attempt; to: string[] }[] = [];
    const crashAfter = 40;

    const burst = Array.from({ length: total }, async (_, i) => {
      const to = recipientsOf(i);
      const attempt = await tryPublish((i % 2 ? r1 : r2).http, {
        to: { users: to },
        event: 'crash.burst',
        payload: { i },
      });
      answered += 1;
      if (attempt.status === 202) accepted += 1;
      results.push({ attempt, to });
      if (!crash && accepted >= crashAfter) {
        inFlightAtCrash = total - answered;
        pgDown = true;
        crash = pg.stopAsync();
      }
    });
    const burstStarted = Date.now();
    await Promise.all(burst);
    measured['pg crash: burst answered within (ms)'] = Date.now() - burstStarted;
    await crash;
    expect(crash).toBeDefined();
    measured['pg crash: publishes in flight at the crash'] = inFlightAtCrash;
    expect(inFlightAtCrash).toBeGreaterThan(0);

    const byStatus: Record<string, number> = {};
    for (const { attempt } of results) byStatus[attempt.status] = (byStatus[attempt.status] ?? 0) + 1;
    measured['pg crash: answers by status'] = JSON.stringify(byStatus);
    // No 500, no hang (status 0 is a request that got no answer within 15 s).
    expect(results.filter(({ attempt }) => attempt.status !== 202 && attempt.status !== 503)).toEqual([]);
    expect(results.filter(({ attempt }) => attempt.status === 503 && attempt.code !== 'UNAVAILABLE')).toEqual([]);
    measured['pg crash: slowest answer (ms)'] = Math.max(...results.map((r) => r.attempt.elapsedMs));

    await pg.startAsync();
    pgDown = false;

    const ok = results.filter(({ attempt }) => attempt.status === 202);
    expect(ok.length).toBeGreaterThanOrEqual(crashAfter);
    for (const { attempt } of ok) expect(attempt.recipients).toBe(3);
    // Every 202: its notification row and all of its delivery rows.
    const rows = await db.query<{ id: string; recipients: number; deliveries: number }>(
      `SELECT n.id::text, n.recipients, (SELECT count(*)::int FROM deliveries d WHERE d.notification_id = n.id) AS deliveries
         FROM notifications n WHERE n.id = ANY($1::uuid[])`,
      [ok.map((r) => r.attempt.id!)],
    );
    expect(rows).toHaveLength(ok.length);
    expect(rows.filter((r) => r.recipients !== 3 || r.deliveries !== 3)).toEqual([]);
    // Nothing half-written anywhere, including publishes whose answer was 503.
    const halfWritten = await db.query(
      `SELECT n.id FROM notifications n LEFT JOIN deliveries d ON d.notification_id = n.id
        GROUP BY n.id, n.recipients HAVING count(d.notification_id) <> n.recipients`,
    );
    expect(halfWritten).toEqual([]);
    const stored = (
      await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE event = 'crash.burst'`)
    )[0]!.n;
    measured['pg crash: answered 503 but committed (allowed: retry with Idempotency-Key)'] = stored - ok.length;

    const published = ok.flatMap(({ attempt, to }) => promised(attempt, to));
    const settledStarted = Date.now();
    const report = await settleAndCheck(db, published, inboxes, 60_000);
    measured['pg crash: restart → every 202 acked (ms)'] = Date.now() - settledStarted;
    measured['pg crash: loss check'] = JSON.stringify(report);
    expect(users.every((u) => u.isOpen)).toBe(true);
  }, 120_000);
});
