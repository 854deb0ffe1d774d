/**
 * Catch-up: a user with N pending notifications (published over REST while offline, in parallel)
 * connects; time from the start of the connection until every notification has been received and
 * every ack answered `ok`, and the rate that makes. Verified in PostgreSQL (all N deliveries acked).
 * The baselines keep no backlog for an offline user: n/a, not a number. That holds for raw-ws-acks too: its
 * acks are counted, not stored, so there is nothing to replay from.
 *
 * A first catch-up of `--warmup` notifications for another user is not counted: the replica's code is
 * compiled (JIT) by then, as on a server that has been running.
 *
 *   node dist/bench/bench/scenarios/catchup.js [--pending 10000] [--warmup 2000] [--reps 3]
 *     [--herald-acks through|ids] [--smoke]
 */
import { TEST_API_KEY } from '../../test/helpers/replica';
import { ACKING_SERVERS, ServerName } from '../lib/args';
import { ClientPool } from '../lib/clients';
import { progress, runMain } from '../lib/log';
import { runPublishers } from '../lib/publishers';
import {
  durableCount,
  heraldAcksNote,
  perUnit,
  scenarioArgs,
  ScenarioRun,
  startCpuMeter,
  withTarget,
  writeScenarioResult,
} from '../lib/scenario';
import { spread, Spread } from '../lib/stats';
import type { Target } from '../lib/targets';
import { formatSpread, printTable } from '../lib/table';

const { args, reps: REPS, servers: SERVERS, heraldAcks: HERALD_ACKS } = scenarioArgs(ACKING_SERVERS);
const PENDING = args.num('pending', 10_000, 50);
/** A first catch-up of this many, not counted (0: none). */
const WARMUP = args.num('warmup', 2_000, 0);

interface Run extends ScenarioRun {
  pending: number;
  received: number;
  acked: number;
  firstReceiveMs: number;
  allReceivedMs: number;
  allAckedMs: number;
  perSecond: number;
  verifiedAcked: number;
  /** CPU ms per notification caught up, from the connect to the last ack: `server` (the replica), `postgres`. */
  cpuMsPerNotification: Record<string, number>;
}

/** Why a baseline has no catch-up time, in its table cell. */
const NO_BACKLOG: Partial<Record<ServerName, string>> = {
  'raw-ws': 'n/a (no durable backlog)',
  'raw-ws-acks': 'n/a (acks counted, nothing stored)',
  'socket.io': 'n/a (no durable backlog)',
};

interface Summary {
  server: ServerName;
  allAckedMs: Spread;
  perSecond: Spread;
  firstReceiveMs: Spread;
  serverCpuUsPerNotification: Spread;
  postgresCpuUsPerNotification: Spread;
}

/** Publishes `pending` notifications to offline `user`, connects it, and times the catch-up. */
async function catchUp(target: Target, user: string, pending: number, label: string): Promise<Omit<Run, 'rep'>> {
  progress(`  herald ${label}: publishing ${pending} notifications to offline ${user}`);
  const published = await runPublishers(1, {
    kind: 'herald',
    urls: target.httpUrls,
    apiKey: TEST_API_KEY,
    users: [user],
    concurrency: 32,
    durationMs: 600_000,
    count: pending,
  });
  if (published.ok !== pending)
    throw new Error(`only ${published.ok}/${pending} publishes accepted: ${JSON.stringify(published.statuses)}`);
  progress(`  herald ${label}: ${pending} pending (${published.perSecond.toFixed(0)} publishes/s); connecting`);
  // From here on the replica and PostgreSQL do only the catch-up: the publishes are all answered.
  const meter = await startCpuMeter(target, ['postgres']);
  const { pool, summary } = await ClientPool.connect(`herald ${user}`, 'herald', target.clientUrls, [user], {
    perClient: 1,
    heraldAcks: HERALD_ACKS,
  });
  try {
    if (summary.connected !== 1) throw new Error(`could not connect: ${summary.errors.join('; ')}`);
    const ticker = setInterval(
      () => progress(`  herald ${label}: ${pool.delivered()} received, ${pool.acksOk} acked`),
      2000,
    );
    try {
      await pool.until('all pending acked', () => pool.acksOk >= pending, 120_000);
    } finally {
      clearInterval(ticker);
    }
    await pool.flush();
    const cpu = await meter.stop();
    const states = [...pool.messages.values()];
    const query = target.query!.bind(target);
    const verifiedAcked = await durableCount(async () => {
      const [row] = await query<{ n: string }>(
        `SELECT count(*) AS n FROM deliveries WHERE user_id = $1 AND status = 'acked'`,
        [user],
      );
      return Number(row?.n);
    }, pending);
    const start = summary.startedAt;
    const run = {
      server: 'herald' as const,
      pending,
      received: pool.delivered(),
      acked: pool.acksOk,
      firstReceiveMs: Math.min(...states.map((s) => s.first)) - start,
      allReceivedMs: Math.max(...states.map((s) => s.last)) - start,
      allAckedMs: pool.lastAckAt - start,
      perSecond: (pending * 1000) / Math.max(1, pool.lastAckAt - start),
      verifiedAcked,
      cpuMsPerNotification: perUnit(cpu, pending),
    };
    progress(
      `  herald ${label}: ${run.received} received in ${run.allReceivedMs} ms, all acked in ${run.allAckedMs} ms ` +
        `(${run.perSecond.toFixed(0)}/s); ${run.verifiedAcked} acked in PostgreSQL; CPU per notification: ` +
        `replica ${((run.cpuMsPerNotification.server ?? 0) * 1000).toFixed(1)} µs, ` +
        `PostgreSQL ${((run.cpuMsPerNotification.postgres ?? 0) * 1000).toFixed(1)} µs`,
    );
    return run;
  } finally {
    await pool.close();
  }
}

async function runHerald(): Promise<Run[]> {
  return withTarget('herald', { processes: 1 }, async (target) => {
    // One catch-up first, not counted: the replica's code is compiled by the time the timed ones run.
    if (WARMUP > 0) await catchUp(target, 'cu-warmup', WARMUP, 'warm-up');
    const runs: Run[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      runs.push({ rep, ...(await catchUp(target, `cu-${rep}`, PENDING, `rep ${rep + 1}`)) });
    }
    return runs;
  });
}

async function main(): Promise<void> {
  progress(`catchup: ${PENDING} pending notifications for one user, ${REPS} repetitions`);
  const runs = SERVERS.includes('herald') ? await runHerald() : [];
  const summary: Summary[] = runs.length
    ? [
        {
          server: 'herald',
          allAckedMs: spread(runs.map((r) => r.allAckedMs)),
          perSecond: spread(runs.map((r) => r.perSecond)),
          firstReceiveMs: spread(runs.map((r) => r.firstReceiveMs)),
          serverCpuUsPerNotification: spread(runs.map((r) => (r.cpuMsPerNotification.server ?? 0) * 1000)),
          postgresCpuUsPerNotification: spread(runs.map((r) => (r.cpuMsPerNotification.postgres ?? 0) * 1000)),
        },
      ]
    : [];
  printTable(
    `catch-up of ${PENDING} pending notifications, one connection: median (min–max) over ${REPS} repetition(s)`,
    [
      'server',
      'first notification ms',
      'all received and acked ms',
      'notifications/s',
      'replica CPU µs/notification',
      'PostgreSQL CPU µs/notification',
    ],
    SERVERS.map((server) => {
      const s = summary.find((x) => x.server === server);
      if (!s) return [server, 'n/a', NO_BACKLOG[server] ?? 'n/a', 'n/a', 'n/a', 'n/a'];
      return [
        server,
        formatSpread(s.firstReceiveMs),
        formatSpread(s.allAckedMs),
        formatSpread(s.perSecond),
        formatSpread(s.serverCpuUsPerNotification),
        formatSpread(s.postgresCpuUsPerNotification),
      ];
    }),
  );
  const parameters = { pending: PENDING, warmup: WARMUP, reps: REPS, heraldAcks: HERALD_ACKS };
  writeScenarioResult('catchup', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    // The baselines have nothing to catch up on; "complete" means the scenario ran as designed for them.
    complete: (mine, server) =>
      server !== 'herald' ||
      (mine.length === REPS &&
        mine.every((r) => r.received >= r.pending && r.acked >= r.pending && r.verifiedAcked === r.pending)),
    notes: [
      'Time runs from the start of the WebSocket handshake to the last ack answered ok; the client acks as it reads (by id: at most 1000 acks unanswered, the default HERALD_MAX_QUEUED_COMMANDS).',
      heraldAcksNote(HERALD_ACKS),
      `A first catch-up of ${WARMUP} notifications (another user) ran before the timed ones and is not counted.`,
      'raw-ws, raw-ws-acks and socket.io keep no backlog for an offline user: n/a. raw-ws-acks counts acks and stores nothing, so it has nothing to replay either.',
    ],
  });
}

runMain(main);
