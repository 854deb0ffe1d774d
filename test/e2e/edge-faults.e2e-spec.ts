import type { PublishResponse } from '@herald/protocol';
import WebSocket from 'ws';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { HeraldClient, Notification } from '../../libs/client/src';
import { request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { assertNothingLost, Published } from '../helpers/loss-check';
import { waitFor } from '../helpers/wait';

/** SDK clients, one user each, all through the one Nginx. */
const CLIENTS = 20;
/** The publisher's pause between notifications: slow while every client is up, quick while any is away. */
const CALM_GAP_MS = 200;
const AWAY_GAP_MS = 30;
/** How often the publisher looks whether its gap is over, and the longest it may run (the tests' timeout). */
const PACE_MS = 10;
const PUBLISHING_LIMIT_MS = 60_000;
/** A publish a proxy refused or a network error cut is tried again this much later, for this long at most. */
const RETRY_GAP_MS = 200;
const RETRY_LIMIT_MS = 10_000;
/** Notifications the publisher goes on sending once every client is back, before it stops. */
const SENT_AFTER_BACK = 5;

type ClientEvent =
  | { type: 'reconnecting'; at: number; delayMs: number; attempt: number; code: number }
  | { type: 'open'; at: number; connectionId: string; transport: string };
type Reconnecting = Extract<ClientEvent, { type: 'reconnecting' }>;
type Opened = Extract<ClientEvent, { type: 'open' }>;

/** One SDK client as an app would run it (default backoff, auto acks), recording what it saw and when. */
class Member {
  readonly userId = `edge-${randomUUID().slice(0, 8)}`;
  readonly client: HeraldClient;
  /** Every id handed to the handler, in the order it was handed (duplicates included). */
  readonly received: string[] = [];
  readonly seqOf = new Map<string, number>();
  readonly events: ClientEvent[] = [];

  constructor(url: string) {
    // WebSocket only: the test is about the socket coming back through Nginx, not the SSE fallback.
    this.client = new HeraldClient({ url, token: userToken(this.userId), WebSocket, transport: 'websocket' });
    this.client.onNotification((n: Notification) => {
      this.received.push(n.id);
      this.seqOf.set(n.id, n.seq);
    });
    this.client.on('reconnecting', (e) =>
      this.events.push({ type: 'reconnecting', at: Date.now(), delayMs: e.delayMs, attempt: e.attempt, code: e.code }),
    );
    this.client.on('open', (e) =>
      this.events.push({ type: 'open', at: Date.now(), connectionId: e.connectionId, transport: e.transport }),
    );
  }

  get isOpen(): boolean {
    return this.client.readyState === HeraldClient.OPEN;
  }

  has(ids: string[]): boolean {
    const seen = new Set(this.received);
    return ids.every((id) => seen.has(id));
  }

  /** The first close this client saw at or after `since` (the SDK's first `reconnecting` then). */
  closedAfter(since: number): Reconnecting | undefined {
    return this.events.find((e): e is Reconnecting => e.type === 'reconnecting' && e.at >= since);
  }

  /** The first `open` after `since`. */
  openedAfter(since: number): Opened | undefined {
    return this.events.find((e): e is Opened => e.type === 'open' && e.at >= since);
  }

  /** The connection it held before `since`. */
  connectionBefore(since: number): string | undefined {
    return this.events.filter((e): e is Opened => e.type === 'open' && e.at < since).at(-1)?.connectionId;
  }

  /** Reconnect attempts between `since` and the next `open` (1 when the first one got through). */
  attemptsAfter(since: number): number {
    const back = this.openedAfter(since)?.at ?? Infinity;
    return this.events.filter((e) => e.type === 'reconnecting' && e.at >= since && e.at < back).length;
  }
}

class Fleet {
  readonly members: Member[];

  private constructor(url: string) {
    this.members = Array.from({ length: CLIENTS }, () => new Member(url));
  }

  static async connect(url: string): Promise<Fleet> {
    const fleet = new Fleet(url);
    for (const m of fleet.members) m.client.connect();
    await waitFor('every client to open', () => fleet.members.every((m) => m.isOpen), 20_000);
    return fleet;
  }

  get users(): string[] {
    return this.members.map((m) => m.userId);
  }

  get anyAway(): boolean {
    return this.members.some((m) => !m.isOpen);
  }

  async received(ids: string[], what: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(what, () => this.members.every((m) => m.has(ids)), timeoutMs);
  }

  close(): void {
    for (const m of this.members) m.client.close();
  }
}

/** A notification that got its 202: when it was sent and when the answer came. */
interface Sent {
  id: string;
  seq: number;
  startedAt: number;
  answeredAt: number;
}

/**
 * Publishes to every user of the fleet in turn, one notification at a time (so `seq` grows with time),
 * as a careful publisher does: an Idempotency-Key on each, and the same key again after a network error
 * or a proxy's 502/503/429 (a reload closes idle keep-alive connections under in-flight requests).
 */
class Publisher {
  readonly sent: Sent[] = [];
  retries = 0;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private turn = 0;

  constructor(
    private readonly users: string[],
    private readonly bases: () => string[],
    private readonly gapMs: () => number,
  ) {}

  async once(event = 'edge.fault'): Promise<Sent> {
    const key = `edge-${randomUUID()}`;
    const startedAt = Date.now();
    const body = { to: { users: this.users }, event, payload: { n: this.sent.length } };
    let tries = 0;
    // A failure worth a retry is thrown (waitFor tries again, and names the last one if time runs out);
    // any other is returned, and ends it at once.
    const outcome = await waitFor(
      `a publish through the edge to be answered 202 (key ${key})`,
      async (): Promise<Sent | Error> => {
        if (tries++ > 0) this.retries += 1;
        const bases = this.bases();
        const base = bases[this.turn++ % bases.length]!;
        let result;
        try {
          result = await request<PublishResponse>(base, 'POST', '/v1/notifications', {
            body,
            headers: { 'idempotency-key': key },
          });
        } catch (error) {
          // fetch's network failures are TypeErrors from Node's realm, not the test's: compare by name.
          if ((error as Error).name !== 'TypeError') return error as Error;
          throw new Error(`publish through ${base} failed: ${(error as Error).message}`, { cause: error });
        }
        if (result.status === 202) {
          const sent = { id: result.body.id, seq: result.body.seq, startedAt, answeredAt: Date.now() };
          this.sent.push(sent);
          return sent;
        }
        const refused = new Error(`publish through ${base} answered ${result.status}: ${JSON.stringify(result.body)}`);
        if (![429, 502, 503].includes(result.status)) return refused;
        throw refused;
      },
      RETRY_LIMIT_MS,
      RETRY_GAP_MS,
    );
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }

  /** Publishes one at a time, `gapMs()` after each answer, until stopped; a failure ends it (`stop` throws it). */
  start(): void {
    this.running = true;
    let answeredAt = 0;
    this.loop = waitFor(
      'the publisher to be stopped',
      async () => {
        if (!this.running || this.failure) return true;
        if (Date.now() - answeredAt < this.gapMs()) return false;
        await this.once().catch((error: unknown) => {
          this.failure = error instanceof Error ? error : new Error(String(error));
        });
        answeredAt = Date.now();
        return false;
      },
      PUBLISHING_LIMIT_MS,
      PACE_MS,
    ).then(() => undefined);
  }

  /** Whether the running publisher has failed (`stop` throws why). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    if (this.failure) throw this.failure;
  }

  /** Waits while the running publisher sends `count` more (so some go out with every client back). */
  async keepsOn(count: number): Promise<void> {
    const from = this.sent.length;
    await waitFor(`${count} more notifications published`, () => this.failed || this.sent.length >= from + count);
  }

  /** Every (notification, user) pair that got a 202. */
  published(): Published[] {
    return this.sent.flatMap((s) => this.users.map((userId) => ({ id: s.id, userId })));
  }
}

/** The processes whose parent is `pid`, from /proc: Nginx's workers, with their titles. */
function childrenOf(pid: number): { pid: number; title: string }[] {
  const children: { pid: number; title: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
      children.push({ pid: Number(entry), title });
    } catch {
      // Gone while we looked.
    }
  }
  return children;
}

const spread = (values: number[]) => Math.max(...values) - Math.min(...values);

describe('Nginx faults: SDK clients come back through the edge with jittered backoff, nothing lost', () => {
  let cluster: TestCluster;
  let edge: Edge;
  /** worker_shutdown_timeout of the rendered config: when a reload's or a quit's old workers cut WebSockets. */
  let shutdownTimeoutMs: number;
  let fleet: Fleet | undefined;
  let publisher: Publisher | undefined;

  beforeAll(async () => {
    cluster = await TestCluster.start('edgefault', 2, { HERALD_TRUSTED_PROXIES: '127.0.0.1' });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
    const timeout = /^\s*worker_shutdown_timeout\s+(\d+)s;/m.exec(readFileSync(edge.configFile, 'utf8'));
    if (!timeout) throw new Error('the rendered config has no worker_shutdown_timeout in seconds');
    shutdownTimeoutMs = Number(timeout[1]) * 1000;
  });

  afterEach(async () => {
    await publisher?.stop().catch(() => undefined);
    publisher = undefined;
    fleet?.close();
    fleet = undefined;
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  /** Every (notification, user) acked in PostgreSQL (or the time is up: the loss check then names what is not). */
  async function settled(published: Published[]): Promise<void> {
    const ids = [...new Set(published.map((p) => p.id))];
    await waitFor(
      'every delivery acked',
      async () =>
        (
          await cluster.db.query<{ open: string }>(
            `SELECT count(*) AS open FROM deliveries WHERE notification_id = ANY($1::uuid[]) AND status <> 'acked'`,
            [ids],
          )
        )[0]?.open === '0',
      20_000,
      200,
    ).catch(() => undefined);
  }

  /**
   * What each client must show after an outage that began at `faultAt`: it came back by itself on a new
   * connection; its handler saw every notification once; and those published while it was away (sent
   * after its socket closed, answered before it was back) reached it after the reconnect in `seq` order.
   */
  async function checkRecovery(faultAt: number, sent: Sent[]) {
    const problems: string[] = [];
    const delays: number[] = [];
    const away: number[] = [];
    const missed: number[] = [];
    for (const m of fleet!.members) {
      const closed = m.closedAfter(faultAt)!;
      const back = m.openedAfter(closed.at)!;
      delays.push(closed.delayMs);
      away.push(back.at - closed.at);
      if (back.transport !== 'websocket') problems.push(`${m.userId}: back over ${back.transport}`);
      if (back.connectionId === m.connectionBefore(faultAt)) problems.push(`${m.userId}: same connection id after`);
      if (new Set(m.received).size !== m.received.length) problems.push(`${m.userId}: the handler saw a duplicate`);
      const whileAway = sent.filter((s) => s.startedAt >= closed.at && s.answeredAt <= back.at).map((s) => s.id);
      missed.push(whileAway.length);
      const order = m.received.filter((id) => whileAway.includes(id)).map((id) => m.seqOf.get(id)!);
      if (order.length !== whileAway.length) {
        problems.push(`${m.userId}: ${whileAway.length - order.length} of ${whileAway.length} sent while away missing`);
      }
      if (order.some((seq, i) => i > 0 && seq < order[i - 1]!)) {
        problems.push(`${m.userId}: sent while away, handed out of seq order: ${order.join(',')}`);
      }
    }
    expect(problems).toEqual([]);
    const report = await assertNothingLost(
      cluster.db,
      publisher!.published(),
      new Map(fleet!.members.map((m) => [m.userId, m.received])),
    );
    return { delays, away, missed, report };
  }

  it('Nginx reloaded: clients come back with jittered backoff, replay correct', async () => {
    fleet = await Fleet.connect(edge.ws);
    publisher = new Publisher(
      fleet.users,
      () => [edge.http],
      () => (fleet?.anyAway ? AWAY_GAP_MS : CALM_GAP_MS),
    );
    const before = [await publisher.once(), await publisher.once(), await publisher.once()].map((s) => s.id);
    await fleet.received(before, 'the first three, to every client');

    const master = edge.masterPid();
    const oldWorkers = childrenOf(master).map((w) => w.pid);
    expect(oldWorkers.length).toBeGreaterThan(0);

    publisher.start();
    const reloadAt = Date.now();
    await edge.reload();
    // New workers take over the listener; the old ones hold the WebSockets they have.
    await waitFor('new Nginx workers', () => childrenOf(master).some((w) => !oldWorkers.includes(w.pid)), 5000);
    await waitFor(
      'the old workers to drain ("worker process is shutting down")',
      () => {
        const draining = childrenOf(master).filter((w) => oldWorkers.includes(w.pid));
        return draining.length > 0 && draining.every((w) => w.title.includes('shutting down'));
      },
      5000,
    );

    // Inside the window the old sockets still carry notifications, published through the reloaded Nginx.
    const during = await publisher.once('edge.during-reload');
    await fleet.received([during.id], 'a notification published during the reload window, on the old sockets');
    expect(fleet.members.every((m) => m.isOpen && m.closedAfter(reloadAt) === undefined)).toBe(true);

    // At worker_shutdown_timeout the old workers cut the sockets; every client comes back by itself.
    await waitFor(
      'every client to see its socket closed',
      () => fleet!.members.every((m) => m.closedAfter(reloadAt)),
      shutdownTimeoutMs + 10_000,
    );
    await waitFor(
      'every client back',
      () => fleet!.members.every((m) => m.openedAfter(m.closedAfter(reloadAt)!.at)),
      15_000,
    );
    await publisher.keepsOn(SENT_AFTER_BACK);
    await publisher.stop();
    const after = [await publisher.once(), await publisher.once(), await publisher.once()].map((s) => s.id);
    await fleet.received(after, 'three more after everyone is back');
    await waitFor('the old workers to exit', () => !childrenOf(master).some((w) => oldWorkers.includes(w.pid)), 10_000);

    const closes = fleet.members.map((m) => m.closedAfter(reloadAt)!.at - reloadAt);
    // Not before the shutdown timeout (the reload itself cuts nothing), not long after it.
    expect(Math.min(...closes)).toBeGreaterThanOrEqual(shutdownTimeoutMs - 1000);
    expect(Math.max(...closes)).toBeLessThanOrEqual(shutdownTimeoutMs + 5000);

    await settled(publisher.published());
    const { delays, away, missed, report } = await checkRecovery(reloadAt, publisher.sent);
    // Jittered: a uniform point in the upper half of the first step, so not all at once and not all alike.
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(100);
    expect(spread(delays)).toBeGreaterThan(100);
    expect(missed.every((n) => n > 0)).toBe(true);
    const allBack = Math.max(...fleet.members.map((m) => m.openedAfter(m.closedAfter(reloadAt)!.at)!.at));
    const firstClose = Math.min(...fleet.members.map((m) => m.closedAfter(reloadAt)!.at));
    process.stdout.write(
      `edge reload: ${CLIENTS} clients; sockets cut ${Math.min(...closes)}-${Math.max(...closes)} ms after the reload; ` +
        `reconnect delays ${Math.min(...delays)}-${Math.max(...delays)} ms (spread ${spread(delays)} ms); ` +
        `away ${Math.min(...away)}-${Math.max(...away)} ms; all back ${allBack - firstClose} ms after the first cut; ` +
        `close codes ${[...new Set(fleet.members.map((m) => m.closedAfter(reloadAt)!.code))].join(',')}; ` +
        `published ${publisher.sent.length} (${report.published} deliveries, ${report.acked} acked), ` +
        `${Math.min(...missed)}-${Math.max(...missed)} per client while away, ${publisher.retries} publish retries\n`,
    );
  }, 60_000);

  it('Nginx stopped gracefully and started again on the same port: clients come back with jittered backoff, nothing lost', async () => {
    fleet = await Fleet.connect(edge.ws);
    const [r1, r2] = cluster.replicas;
    publisher = new Publisher(
      fleet.users,
      // Straight to the replicas, in turn: the edge is down part of the time.
      () => [r1!.http, r2!.http],
      () => (fleet?.anyAway ? AWAY_GAP_MS : CALM_GAP_MS),
    );
    const before = [await publisher.once(), await publisher.once(), await publisher.once()].map((s) => s.id);
    await fleet.received(before, 'the first three, to every client');

    const port = edge.port;
    publisher.start();
    const quitAt = Date.now();
    const quitting = edge.quit();
    // The listener closes at once; the sockets already open stay until the shutdown timeout.
    await waitFor(
      'the listener to close',
      () =>
        fetch(`${edge.http}/health/ready`).then(
          () => false,
          () => true,
        ),
      5000,
    );
    const during = await publisher.once('edge.during-quit');
    await fleet.received([during.id], 'a notification published while Nginx drains, on the old sockets');
    expect(fleet.members.every((m) => m.isOpen && m.closedAfter(quitAt) === undefined)).toBe(true);

    await quitting;
    const exitedAfter = Date.now() - quitAt;
    expect(exitedAfter).toBeGreaterThanOrEqual(shutdownTimeoutMs - 1000);
    expect(exitedAfter).toBeLessThanOrEqual(shutdownTimeoutMs + 5000);
    await waitFor(
      'every client to see its socket closed',
      () => fleet!.members.every((m) => m.closedAfter(quitAt)),
      5000,
    );

    // Down until every client's first attempt was refused, then the same config on the same port.
    await waitFor(
      "every client's first reconnect attempt to be refused",
      () => fleet!.members.every((m) => m.attemptsAfter(quitAt) >= 2),
      10_000,
    );
    await edge.restart();
    const restartedAt = Date.now();
    expect(edge.port).toBe(port);
    await waitFor(
      'every client back',
      () => fleet!.members.every((m) => m.openedAfter(m.closedAfter(quitAt)!.at)),
      20_000,
    );
    await publisher.keepsOn(SENT_AFTER_BACK);
    await publisher.stop();
    const after: string[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await request<PublishResponse>(edge.http, 'POST', '/v1/notifications', {
        body: { to: { users: fleet.users }, event: 'edge.after-restart' },
      });
      expect(result.status).toBe(202);
      publisher.sent.push({ id: result.body.id, seq: result.body.seq, startedAt: Date.now(), answeredAt: Date.now() });
      after.push(result.body.id);
    }
    await fleet.received(after, 'three more through the restarted Nginx');

    await settled(publisher.published());
    const { delays, away, missed, report } = await checkRecovery(quitAt, publisher.sent);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(100);
    expect(spread(delays)).toBeGreaterThan(100);
    expect(missed.every((n) => n > 0)).toBe(true);
    const attempts = fleet.members.map((m) => m.attemptsAfter(quitAt));
    const allBack = Math.max(...fleet.members.map((m) => m.openedAfter(m.closedAfter(quitAt)!.at)!.at));
    process.stdout.write(
      `edge quit+start: ${CLIENTS} clients; master exited ${exitedAfter} ms after SIGQUIT; ` +
        `first reconnect delays ${Math.min(...delays)}-${Math.max(...delays)} ms (spread ${spread(delays)} ms); ` +
        `attempts ${Math.min(...attempts)}-${Math.max(...attempts)}; away ${Math.min(...away)}-${Math.max(...away)} ms; ` +
        `all back ${allBack - restartedAt} ms after the restart; ` +
        `published ${publisher.sent.length} (${report.published} deliveries, ${report.acked} acked), ` +
        `${Math.min(...missed)}-${Math.max(...missed)} per client while away, ${publisher.retries} publish retries\n`,
    );
  }, 60_000);
});
