/**
 * Reconnect storm: U users connected through Nginx to two server processes (Herald: two replicas); P of
 * them have N pending notifications each, published straight to a replica (not through Nginx) while
 * their clients are away. Two storms per server and repetition, each on a fresh target:
 * - nginx-restart: Nginx is stopped fast (SIGTERM, `nginx -s stop`), the notifications are published,
 *   and Nginx starts again 1 s after the stop;
 * - replica-kill: one server process is SIGKILLed; its clients reconnect through Nginx to the other, and
 *   the notifications go to P of them (users whose connection the kill ended) on the surviving replica.
 * Clients reconnect on the SDK's schedule from 64 loopback addresses, through Nginx's default per-address
 * limits (bench/clients/storm-client.ts). Herald's clients carry their JWT in `Sec-WebSocket-Protocol`, as
 * the SDK does by default (ADR 0013); with `--herald-auth ticket` they mint a ticket first, as the SDK's
 * `credentials: 'ticket'` does.
 * Measured from the stop or the kill: time until 50/99/100% of the clients that lost their connection are
 * back, until every pending notification is acked, handshakes refused and how, peak CPU per process,
 * PostgreSQL connections, duplicates, lost; and a series of reconnected clients every 250 ms for the chart.
 * The baselines keep no backlog: nothing is published to them, and their acked/lost/duplicates are n/a.
 *
 *   node dist/bench/bench/scenarios/storm.js [--users 10000] [--pending-users 1000] [--pending 10]
 *     [--reps 3] [--servers herald,raw-ws,socket.io] [--storms nginx-restart,replica-kill] [--smoke]
 *     [--herald-auth protocol|ticket]
 */
import type { ServerName } from '../lib/args';
import type { EdgeSettings } from '../lib/baseline-edge';
import { progress, runMain, sleep } from '../lib/log';
import { PeakCpuSampler, PgConnectionSampler } from '../lib/proc';
import { scenarioArgs, ScenarioRun, summarize, withTarget, writeScenarioResult } from '../lib/scenario';
import { percentile, spread, Spread } from '../lib/stats';
import { StormPool } from '../lib/storm-clients';
import { benchPayload, Target } from '../lib/targets';
import { formatRatio, formatSpread, printTable } from '../lib/table';
import { Samples, scrape } from '../../test/helpers/metrics';

const STORMS = ['nginx-restart', 'replica-kill'] as const;
type Storm = (typeof STORMS)[number];

const { args, reps: REPS, servers: SERVERS } = scenarioArgs();
const USERS = args.num('users', 10_000, 300);
const PENDING_USERS = Math.min(USERS, args.num('pending-users', 1000, 20));
const PENDING = args.num('pending', 10);
const PER_CLIENT = args.num('per-client', 2500);
const RESTART_AFTER_MS = args.num('restart-after-ms', 1000);
const TIMEOUT_MS = args.num('timeout-ms', 120_000, 20_000);
const SERIES_STEP_MS = 250;
const HERALD_AUTH = (() => {
  const i = process.argv.indexOf('--herald-auth');
  const auth = i < 0 ? 'protocol' : process.argv[i + 1];
  if (auth !== 'protocol' && auth !== 'ticket') throw new Error(`--herald-auth is protocol or ticket, not ${auth}`);
  return auth;
})();
const STORM_LIST = (() => {
  const i = process.argv.indexOf('--storms');
  const names = i < 0 ? [...STORMS] : (process.argv[i + 1] ?? '').split(',');
  for (const n of names) if (!(STORMS as readonly string[]).includes(n)) throw new Error(`unknown storm ${n}`);
  return names as Storm[];
})();
/**
 * Enough Nginx workers that none passes the open-file cap (a proxied WebSocket holds two connections:
 * 20 000 for 10 000 users, 5 000 a worker), reuseport to spread them evenly, per-address limits at their defaults.
 */
const EDGE: EdgeSettings = { defaultLimits: true, workerProcesses: 4, workerConnections: 16384, reusePort: true };
const CPU_GROUPS = ['server', 'nginx', 'postgres', 'redis', 'clients'] as const;

interface Run extends ScenarioRun {
  storm: Storm;
  users: number;
  /** Clients whose connection the storm ended. */
  affected: number;
  neverReconnected: number;
  reconnect50Ms: number;
  reconnect99Ms: number;
  reconnect100Ms: number;
  /** Herald: from the storm to the last pending notification acked; NaN for the baselines. */
  allAckedMs: number;
  pendingExpected: number;
  lost: number | null;
  unacked: number | null;
  duplicates: number | null;
  dropsAfterReconnect: number;
  refused: Record<string, number>;
  /** Herald: what the replicas turned away, from their metrics (the replicas that lived through the storm). */
  turnedAway: { shed: number; tooOld: number } | null;
  /** Peak % of one core of the busiest process of each group. */
  peakCpu: Record<string, number>;
  pgConnections: { open: number; active: number } | null;
  /** nginx-restart: from the stop to the old Nginx gone (stopMs) and to the new one answering (downMs). */
  stopMs: number | null;
  downMs: number | null;
  /** From the stop or kill until every pending publish was answered (0 for the baselines). */
  publishMs: number;
  /** Reconnected clients at 0, 250, 500 … ms after the storm. */
  series: number[];
}

type Summary = { server: ServerName; storm: Storm } & Record<
  'reconnect50Ms' | 'reconnect99Ms' | 'reconnect100Ms' | 'allAckedMs' | 'pgOpen' | 'pgActive',
  Spread
> & {
    affected: number;
    neverReconnected: number;
    lost: number | null;
    duplicates: number | null;
    dropsAfterReconnect: number;
    refused: Record<string, number>;
    peakCpu: Record<string, Spread>;
    /** The series of the repetition whose 99% time is the median. */
    series: number[];
  };

/** Each replica's metrics (null for one that does not answer: killed). */
function scrapeEach(urls: string[]): Promise<(Samples | null)[]> {
  return Promise.all(urls.map((url) => scrape([url]).catch(() => null)));
}

/** How many handshakes the replicas shed and turned away for their queue age between two scrapes. */
function turnedAwayBetween(before: (Samples | null)[], after: (Samples | null)[]): { shed: number; tooOld: number } {
  const moved = (prefix: string) => {
    let n = 0;
    before.forEach((b, i) => {
      const a = after[i];
      if (!b || !a) return;
      for (const [key, value] of a) if (key.startsWith(prefix)) n += value - (b.get(key) ?? 0);
    });
    return n;
  };
  return { shed: moved('herald_handshakes_shed_total'), tooOld: moved('herald_handshakes_too_old_total') };
}

/** `n` items spread evenly over `list`. */
function pick<T>(list: T[], n: number): T[] {
  const step = Math.max(1, Math.floor(list.length / Math.max(1, n)));
  return list.filter((_, i) => i % step === 0).slice(0, n);
}

/** PENDING notifications to `users`, one publish each to the whole list, all at once, straight to replica `index`. */
function publishPending(target: Target, index: number, users: string[]): Promise<string[]> {
  return Promise.all(Array.from({ length: PENDING }, (_, k) => target.publishDirect!(index, users, benchPayload(k))));
}

async function once(server: ServerName, storm: Storm, rep: number): Promise<Run> {
  return withTarget(server, { processes: 2, nginx: true, edge: EDGE }, async (target) => {
    const label = `${server} ${storm} rep ${rep + 1}`;
    const users = Array.from({ length: USERS }, (_, k) => `storm-${rep}-${k}`);
    const pool = await StormPool.connect(label, {
      kind: target.clientKind,
      url: target.clientUrls[0]!,
      ...(server === 'herald' && HERALD_AUTH === 'ticket' ? { ticketsUrl: `${target.httpUrls[0]!}/v1/tickets` } : {}),
      users,
      perClient: PER_CLIENT,
      heraldAcks: 'through',
      timeoutMs: TIMEOUT_MS * 2,
    });
    try {
      await sleep(1000);
      const cpu = new PeakCpuSampler(async () => ({
        server: target.serverPids(),
        ...(await target.supportPids()),
        clients: pool.pids(),
      })).start();
      const pg = target.database ? await new PgConnectionSampler(target.database).start() : undefined;
      const durable = target.publishDirect !== undefined;
      const metricsBefore = target.replicaUrls ? await scrapeEach(target.replicaUrls) : null;
      let pendingUsers: string[] = [];
      let ids: string[] = [];
      let downMs: number | null = null;
      let stopMs: number | null = null;
      let publishMs = 0;
      const t0 = Date.now();
      pool.mark(t0);
      if (storm === 'nginx-restart') {
        await target.edge!.stop();
        stopMs = Date.now() - t0;
        pendingUsers = pick(users, PENDING_USERS);
        // Nginx comes back 1 s after the stop whether or not the publishes are all answered by then (at full
        // size they take longer than that: publishMs says how long).
        const published = durable
          ? publishPending(target, 0, pendingUsers).finally(() => (publishMs = Date.now() - t0))
          : Promise.resolve([]);
        await sleep(t0 + RESTART_AFTER_MS - Date.now());
        await target.edge!.restart();
        downMs = Date.now() - t0;
        ids = await published;
      } else {
        await target.kill(0);
        await sleep(200);
        pendingUsers = pick(await pool.offline(), PENDING_USERS);
        if (durable) ids = await publishPending(target, 1, pendingUsers);
        publishMs = Date.now() - t0;
      }
      const expected = durable ? pendingUsers.length * ids.length : 0;
      progress(
        `  ${label}: storm at t0; ${durable ? `${expected} pending notifications published in ${publishMs} ms` : 'no backlog (baseline)'}` +
          `${downMs !== null ? `; nginx gone after ${stopMs} ms, back after ${downMs} ms` : ''}`,
      );
      const ticker = setInterval(() => {
        const c = pool.counts;
        progress(
          `  ${label}: +${((Date.now() - t0) / 1000).toFixed(1)} s ${c.reconnected}/${c.affected} reconnected, ` +
            `${c.connected}/${USERS} open${durable ? `, ${c.acked}/${expected} acked` : ''}`,
        );
      }, 2000);
      try {
        await pool.until(
          'every client back and every pending notification acked',
          () => {
            const c = pool.counts;
            // An Nginx stop cuts every client; a kill, those of one process (at least one).
            const cut = storm === 'nginx-restart' ? c.affected === USERS : c.affected > 0;
            return cut && c.connected === USERS && c.reconnected >= c.affected && c.acked >= expected;
          },
          TIMEOUT_MS,
        );
      } catch (error) {
        progress(`  ${label}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearInterval(ticker);
      }
      // Late duplicates would come now.
      await sleep(500);
      const peakCpu = await cpu.stop();
      const pgConnections = pg ? await pg.stop() : null;
      const collected = await pool.collect();
      const turnedAway =
        metricsBefore && target.replicaUrls
          ? turnedAwayBetween(metricsBefore, await scrapeEach(target.replicaUrls))
          : null;
      const times = collected.reconnectMs.map((ms) => (ms < 0 ? Infinity : ms)).sort((a, b) => a - b);
      const at = (p: number) => {
        const v = percentile(times, p);
        return Number.isFinite(v) ? v : NaN;
      };
      const byUser = new Map(collected.users.map((u) => [u.user, u]));
      let lost = 0;
      let unacked = 0;
      let lastAck = 0;
      for (const user of durable ? pendingUsers : []) {
        const mine = byUser.get(user);
        const received = new Map(mine?.received);
        const acked = new Map(mine?.acked);
        for (const id of ids) {
          if (!received.has(id)) lost++;
          const ackedAt = acked.get(id);
          if (ackedAt === undefined) unacked++;
          else lastAck = Math.max(lastAck, ackedAt);
        }
      }
      const duplicates = collected.users.reduce((n, u) => n + u.received.filter(([, count]) => count > 1).length, 0);
      const last = Number.isFinite(times.at(-1) ?? NaN) ? times.at(-1)! : TIMEOUT_MS;
      const series: number[] = [];
      for (let ms = 0, k = 0; ms <= last + SERIES_STEP_MS; ms += SERIES_STEP_MS) {
        while (k < times.length && times[k]! <= ms) k++;
        series.push(k);
      }
      const run: Run = {
        server,
        rep,
        storm,
        users: USERS,
        affected: times.length,
        neverReconnected: times.filter((t) => !Number.isFinite(t)).length,
        reconnect50Ms: at(50),
        reconnect99Ms: at(99),
        reconnect100Ms: at(100),
        allAckedMs: durable && unacked === 0 ? lastAck : NaN,
        pendingExpected: expected,
        lost: durable ? lost : null,
        unacked: durable ? unacked : null,
        duplicates: durable ? duplicates : null,
        dropsAfterReconnect: collected.dropsAfterReconnect,
        refused: collected.refused,
        turnedAway,
        peakCpu,
        pgConnections,
        stopMs,
        downMs,
        publishMs,
        series,
      };
      progress(
        `  ${label}: ${run.affected} affected; 50% ${run.reconnect50Ms} ms, 99% ${run.reconnect99Ms} ms, 100% ${run.reconnect100Ms} ms` +
          `${durable ? `; all acked ${run.allAckedMs} ms, lost ${lost}, unacked ${unacked}, duplicates ${duplicates}` : ''}` +
          `; refused ${JSON.stringify(run.refused)}` +
          `${turnedAway ? `; replicas shed ${turnedAway.shed}, turned away for queue age ${turnedAway.tooOld}` : ''}`,
      );
      return run;
    } finally {
      await pool.close();
    }
  });
}

const seconds = (s: Spread) => ({ median: s.median / 1000, min: s.min / 1000, max: s.max / 1000 });
const refusedText = (refused: Record<string, number>) =>
  Object.entries(refused)
    .sort((a, b) => b[1] - a[1])
    .map(([how, n]) => `${how}: ${n}`)
    .join(', ') || 'none';

function summaryOf(mine: Run[], key: { server: ServerName; storm: Storm }): Summary {
  const median = (values: number[]) => spread(values).median;
  const refused: Record<string, number> = {};
  for (const how of new Set(mine.flatMap((r) => Object.keys(r.refused))))
    refused[how] = median(mine.map((r) => r.refused[how] ?? 0));
  // What the replicas say they turned away (Herald), beside what the clients saw.
  if (mine.every((r) => r.turnedAway)) {
    refused['replicas: shed'] = median(mine.map((r) => r.turnedAway!.shed));
    refused['replicas: queued too long'] = median(mine.map((r) => r.turnedAway!.tooOld));
  }
  const byP99 = [...mine].sort((a, b) => (a.reconnect99Ms || Infinity) - (b.reconnect99Ms || Infinity));
  const worst = (values: (number | null)[]) =>
    values.some((v) => v === null) ? null : Math.max(...(values as number[]));
  const peakCpu: Record<string, Spread> = {};
  for (const group of CPU_GROUPS) peakCpu[group] = spread(mine.map((r) => r.peakCpu[group] ?? NaN));
  return {
    ...key,
    reconnect50Ms: spread(mine.map((r) => r.reconnect50Ms)),
    reconnect99Ms: spread(mine.map((r) => r.reconnect99Ms)),
    reconnect100Ms: spread(mine.map((r) => r.reconnect100Ms)),
    allAckedMs: spread(mine.map((r) => r.allAckedMs)),
    pgOpen: spread(mine.map((r) => r.pgConnections?.open ?? NaN)),
    pgActive: spread(mine.map((r) => r.pgConnections?.active ?? NaN)),
    affected: median(mine.map((r) => r.affected)),
    neverReconnected: Math.max(...mine.map((r) => r.neverReconnected)),
    lost: worst(mine.map((r) => r.lost)),
    duplicates: worst(mine.map((r) => r.duplicates)),
    dropsAfterReconnect: Math.max(...mine.map((r) => r.dropsAfterReconnect)),
    refused,
    peakCpu,
    series: byP99[Math.floor((byP99.length - 1) / 2)]?.series ?? [],
  };
}

async function main(): Promise<void> {
  progress(
    `storm: ${USERS} users (${PENDING_USERS} with ${PENDING} pending each) through nginx to 2 processes; ` +
      `storms ${STORM_LIST.join(', ')}; ${REPS} repetitions; servers ${SERVERS.join(', ')}; Herald's clients authenticate ` +
      (HERALD_AUTH === 'ticket'
        ? 'with a ticket minted per attempt'
        : 'with the JWT in Sec-WebSocket-Protocol (the SDK default)'),
  );
  const runs: Run[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    for (const storm of STORM_LIST) for (const server of SERVERS) runs.push(await once(server, storm, rep));
  }
  const keys = STORM_LIST.flatMap((storm) => SERVERS.map((server) => ({ server, storm })));
  const summary = summarize(runs, keys, summaryOf);
  const find = (s: Summary) => summary.find((o) => o.server === 'socket.io' && o.storm === s.storm);
  const count = (v: number | null) => (v === null ? 'n/a' : String(v));
  printTable(
    `reconnect storm, ${USERS} users through nginx to 2 processes, s after the stop/kill: median (min–max) over ${REPS} repetition(s)`,
    [
      'server',
      'storm',
      'clients cut',
      '50% back',
      '99% back',
      '100% back',
      'all pending acked',
      'never back',
      'lost',
      'duplicates',
      'dropped again',
      '99% vs socket.io',
      '100% vs socket.io',
    ],
    summary.map((s) => [
      s.server,
      s.storm,
      String(s.affected),
      formatSpread(seconds(s.reconnect50Ms)),
      formatSpread(seconds(s.reconnect99Ms)),
      formatSpread(seconds(s.reconnect100Ms)),
      s.lost === null ? 'n/a (no backlog)' : formatSpread(seconds(s.allAckedMs)),
      String(s.neverReconnected),
      count(s.lost),
      count(s.duplicates),
      String(s.dropsAfterReconnect),
      formatRatio(s.reconnect99Ms.median, find(s)?.reconnect99Ms.median),
      formatRatio(s.reconnect100Ms.median, find(s)?.reconnect100Ms.median),
    ]),
  );
  printTable(
    `reconnect storm: peak CPU (% of one core, busiest process of each kind) and PostgreSQL connections, median (min–max)`,
    [
      'server',
      'storm',
      'server process',
      'nginx worker',
      'postgres backend',
      'redis',
      'load client',
      'PG open',
      'PG active',
    ],
    summary.map((s) => [
      s.server,
      s.storm,
      ...CPU_GROUPS.map((g) => (s.server !== 'herald' && g === 'postgres' ? 'n/a' : formatSpread(s.peakCpu[g]))),
      formatSpread(s.pgOpen),
      formatSpread(s.pgActive),
    ]),
  );
  printTable(
    'reconnect storm: handshakes refused after the stop/kill, by how (median count per repetition)',
    ['server', 'storm', 'refused'],
    summary.map((s) => [s.server, s.storm, refusedText(s.refused)]),
  );
  const parameters = {
    users: USERS,
    pendingUsers: PENDING_USERS,
    pending: PENDING,
    reps: REPS,
    storms: STORM_LIST,
    restartAfterMs: RESTART_AFTER_MS,
    timeoutMs: TIMEOUT_MS,
    seriesStepMs: SERIES_STEP_MS,
    edge: EDGE,
  };
  const failed = (r: Run) => r.neverReconnected > 0 || (r.lost ?? 0) > 0 || (r.unacked ?? 0) > 0;
  writeScenarioResult('storm', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    complete: (mine) => mine.length === REPS * STORM_LIST.length && !mine.some(failed),
    notes: [
      "Every server's clients reconnect on the SDK's schedule (libs/client/src/backoff.ts, DEFAULT_BACKOFF), from 64 loopback addresses 127.0.1.1-64, through Nginx's default per-address limits.",
      "Herald's clients use the SDK's default auth path: POST /v1/tickets with the user's JWT, then /ws?ticket=. A 1013 close 'retry after N ms' waits N ms without counting as a failed attempt (counted as shed (1013)).",
      'nginx-restart: Nginx stopped with SIGTERM (fast), pending notifications published straight to replica 1, Nginx started 1 s after the stop. replica-kill: process 1 SIGKILLed, pending notifications published to process 2 for users whose connection the kill ended.',
      'Times are from the stop or the kill; percentages are of the clients whose connection the storm ended. All pending acked: the last ack answered ok, by the client.',
      'Peak CPU: per process, over 500 ms windows from /proc/<pid>/stat; the busiest process of each kind. PG: pg_stat_activity of the private database every 250 ms (active = not idle).',
      'raw ws and Socket.IO keep no backlog for a client that is away: nothing is published to them, and acked/lost/duplicates are n/a.',
    ],
  });
  const bad = runs.filter(failed);
  if (bad.length > 0)
    throw new Error(
      `storm: ${bad.map((r) => `${r.server} ${r.storm} rep ${r.rep + 1}: ${r.neverReconnected} never back, ${r.lost ?? 0} lost, ${r.unacked ?? 0} unacked`).join('; ')}`,
    );
}

runMain(main);
