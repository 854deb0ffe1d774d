/**
 * Broadcast fan-out: N connected users on ONE server process, B broadcasts of ~150 B JSON, at most W
 * broadcasts in flight (a broadcast is done when its last recipient has it). Herald publishes
 * `to: {all: true}` over REST with durability on (a delivery row per user, every notification acked);
 * raw ws gets POST /broadcast (frame built once, through Redis), and raw-ws-acks the same with an id in
 * the frame and one ack frame per delivery back to the server, which counts them; Socket.IO gets
 * `emitter.emit(...)`. Reports deliveries/s (all received; Herald and raw-ws-acks also all acked),
 * completion p50/p99 per broadcast (publish → last recipient), and CPU per delivery of the server,
 * PostgreSQL backends and Redis.
 *
 *   node dist/bench/bench/scenarios/broadcast.js [--users 5000] [--broadcasts 200] [--window 8] [--reps 3]
 *     [--herald-acks through|ids] [--smoke]
 */
import { ACKING_SERVERS, ServerName } from '../lib/args';
import { progress, runMain } from '../lib/log';
import {
  ackedSoFar,
  durableCount,
  heraldAcksNote,
  perUnit,
  scenarioArgs,
  ScenarioRun,
  startCpuMeter,
  summarize,
  untilAcked,
  withClients,
  withTarget,
  writeScenarioResult,
} from '../lib/scenario';
import { percentiles, spread, Spread } from '../lib/stats';
import { benchPayload } from '../lib/targets';
import { formatRatio, formatSpread, printTable } from '../lib/table';

const { args, reps: REPS, servers: SERVERS, heraldAcks: HERALD_ACKS } = scenarioArgs(ACKING_SERVERS);
const USERS = args.num('users', 5000, 50);
const BROADCASTS = args.num('broadcasts', 200, 10);
const WINDOW = args.num('window', 8, 4);
const PER_CLIENT = args.num('per-client', 2500);
const TIMEOUT_MS = args.num('timeout-ms', 300_000, 30_000);

interface Run extends ScenarioRun {
  deliveries: number;
  received: number;
  acked: number | null;
  receivedPerSecond: number;
  ackedPerSecond: number | null;
  completionP50: number;
  completionP99: number;
  completionMax: number;
  cpuMsPerDelivery: Record<string, number>;
  durableCheck: string;
}

interface Summary {
  server: ServerName;
  receivedPerSecond: Spread;
  ackedPerSecond: Spread;
  completionP50: Spread;
  completionP99: Spread;
  serverCpuUsPerDelivery: Spread;
  postgresCpuUsPerDelivery: Spread;
  redisCpuUsPerDelivery: Spread;
}

async function runServer(server: ServerName): Promise<Run[]> {
  return withTarget(server, { processes: 1 }, async (target) => {
    const users = Array.from({ length: USERS }, (_, k) => `bc-${k}`);
    return withClients(server, target, users, { perClient: PER_CLIENT, heraldAcks: HERALD_ACKS }, async (pool) => {
      const runs: Run[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const base = (rep + 1) * 1_000_000;
        const acksBefore = await ackedSoFar(target, pool);
        const clientAcksBefore = pool.acksOk;
        const meter = await startCpuMeter(target, ['postgres', 'redis']);
        const completed = () => {
          let n = 0;
          for (let i = base; i < base + BROADCASTS; i++) if ((pool.messages.get(i)?.count ?? 0) >= USERS) n++;
          return n;
        };
        const startedAt = Date.now();
        let published = 0;
        let acksAfter: typeof acksBefore = null;
        const ticker = setInterval(
          () =>
            progress(
              `  ${server} rep ${rep + 1}: ${published}/${BROADCASTS} published, ${completed()} complete` +
                `${target.clientKind === 'herald' ? `, ${pool.acksOk - clientAcksBefore} acked` : ''}`,
            ),
          2000,
        );
        try {
          while (published < BROADCASTS) {
            await pool.until('a broadcast to complete', () => published - completed() < WINDOW, TIMEOUT_MS);
            const answer = await target.broadcast(benchPayload(base + published));
            if (answer.recipients !== undefined && answer.recipients !== USERS) {
              throw new Error(`herald broadcast reached ${answer.recipients} recipients, expected ${USERS}`);
            }
            published++;
          }
          await pool.until(`${server}: all broadcasts received`, () => completed() === BROADCASTS, TIMEOUT_MS);
          if (acksBefore) {
            const what = `${server}: all deliveries acked`;
            acksAfter = await untilAcked(what, target, pool, acksBefore, USERS * BROADCASTS, TIMEOUT_MS);
          }
        } finally {
          clearInterval(ticker);
        }
        await pool.flush();
        const cpu = await meter.stop();
        const states = Array.from({ length: BROADCASTS }, (_, k) => pool.messages.get(base + k)!);
        const received = states.reduce((s, m) => s + m.count, 0);
        const lastReceive = Math.max(...states.map((m) => m.last));
        const completion = percentiles(states.map((m) => m.last - m.t));
        const deliveries = USERS * BROADCASTS;
        const acked = acksBefore && acksAfter ? acksAfter.count - acksBefore.count : null;
        const lastAck = acksAfter?.lastAt ?? 0;
        let durableCheck = 'n/a (nothing persisted)';
        if (target.query) {
          const query = target.query.bind(target);
          const expected = deliveries * (rep + 1);
          const acked = await durableCount(async () => {
            const [row] = await query<{ acked: string }>(
              `SELECT count(*) AS acked FROM deliveries WHERE status = 'acked' AND user_id LIKE 'bc-%'`,
            );
            // A server with the stream record (ADR 0007) journals broadcast acks instead of acking rows.
            const journaled = await query<{ n: string }>(
              `SELECT count(*) AS n FROM broadcast_acks, unnest(user_ids) AS u WHERE u LIKE 'bc-%'`,
            ).catch(() => [{ n: '0' }]);
            return Number(row?.acked) + Number(journaled[0]?.n ?? 0);
          }, expected);
          durableCheck = `${acked}/${expected} delivery rows acked in PostgreSQL`;
          if (acked !== expected) throw new Error(`herald: ${durableCheck}`);
        }
        const run: Run = {
          server,
          rep,
          deliveries,
          received,
          acked,
          receivedPerSecond: (received * 1000) / Math.max(1, lastReceive - startedAt),
          ackedPerSecond: acked === null ? null : (acked * 1000) / Math.max(1, lastAck - startedAt),
          completionP50: completion.p50,
          completionP99: completion.p99,
          completionMax: completion.max,
          cpuMsPerDelivery: perUnit(cpu, deliveries),
          durableCheck,
        };
        progress(
          `  ${server} rep ${rep + 1}: ${run.receivedPerSecond.toFixed(0)} deliveries/s received` +
            `${run.ackedPerSecond === null ? '' : `, ${run.ackedPerSecond.toFixed(0)}/s acked`}, completion p50 ${completion.p50} ms p99 ${completion.p99} ms; ${durableCheck}`,
        );
        runs.push(run);
      }
      return runs;
    });
  });
}

async function main(): Promise<void> {
  progress(`broadcast: ${USERS} users on one process, ${BROADCASTS} broadcasts, window ${WINDOW}, ${REPS} repetitions`);
  const runs: Run[] = [];
  for (const server of SERVERS) runs.push(...(await runServer(server)));
  const us = (r: Run, group: string) => (r.cpuMsPerDelivery[group] ?? 0) * 1000;
  const keys = SERVERS.map((server) => ({ server }));
  const summary: Summary[] = summarize(runs, keys, (mine, { server }) => {
    return {
      server,
      receivedPerSecond: spread(mine.map((r) => r.receivedPerSecond)),
      ackedPerSecond: spread(mine.map((r) => r.ackedPerSecond ?? NaN)),
      completionP50: spread(mine.map((r) => r.completionP50)),
      completionP99: spread(mine.map((r) => r.completionP99)),
      serverCpuUsPerDelivery: spread(mine.map((r) => us(r, 'server'))),
      postgresCpuUsPerDelivery: spread(mine.map((r) => us(r, 'postgres'))),
      redisCpuUsPerDelivery: spread(mine.map((r) => us(r, 'redis'))),
    };
  });
  const rate = (name: ServerName) => summary.find((s) => s.server === name)?.receivedPerSecond.median;
  const ackedRate = (name: ServerName) => summary.find((s) => s.server === name)?.ackedPerSecond.median;
  printTable(
    `broadcast fan-out, ${USERS} users on one process, ${BROADCASTS} broadcasts: median (min–max) over ${REPS} repetition(s)`,
    [
      'server',
      'deliveries/s received',
      'deliveries/s acked',
      'completion p50 ms',
      'completion p99 ms',
      'server CPU µs/delivery',
      'PostgreSQL µs/delivery',
      'Redis µs/delivery',
      'vs raw-ws',
      'vs socket.io',
      'acked vs raw-ws-acks',
    ],
    summary.map((s) => [
      s.server,
      formatSpread(s.receivedPerSecond),
      formatSpread(s.ackedPerSecond),
      formatSpread(s.completionP50),
      formatSpread(s.completionP99),
      formatSpread(s.serverCpuUsPerDelivery),
      formatSpread(s.postgresCpuUsPerDelivery),
      formatSpread(s.redisCpuUsPerDelivery),
      formatRatio(s.receivedPerSecond.median, rate('raw-ws')),
      formatRatio(s.receivedPerSecond.median, rate('socket.io')),
      formatRatio(s.ackedPerSecond.median, ackedRate('raw-ws-acks')),
    ]),
  );
  const parameters = { users: USERS, broadcasts: BROADCASTS, window: WINDOW, reps: REPS, heraldAcks: HERALD_ACKS };
  writeScenarioResult('broadcast', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    complete: (mine) =>
      mine.length === REPS &&
      mine.every((r) => r.received >= r.deliveries && (r.acked === null || r.acked >= r.deliveries)),
    notes: [
      'Deliveries/s = deliveries / (last receive − first publish); Herald acked = deliveries / (last ack answered, or sent quiet, − first publish), every ack then found in PostgreSQL; raw-ws-acks acked = deliveries / (last ack parsed by the server − first publish).',
      'vs raw-ws and vs socket.io compare deliveries/s received; acked vs raw-ws-acks compares deliveries/s acked (a raw ws server that reads one ack frame per delivery and answers none).',
      heraldAcksNote(HERALD_ACKS),
      `Completion = last recipient's receive time − publish time of that broadcast, with at most ${WINDOW} broadcasts in flight.`,
      'Redis CPU is the whole redis-server (shared with anything else on the machine); PostgreSQL CPU is the backends of the private database.',
      'Load clients (JSON parse, Herald acks) share the 2 cores with the server.',
    ],
  });
}

runMain(main);
