/**
 * Unicast latency: U users over TWO server processes behind a private Nginx, R notifications/s to
 * random users for S seconds. Herald: REST publish through Nginx (committed to PostgreSQL before the
 * 202, every notification acked); raw ws: HTTP POST /publish through Nginx → Redis; raw-ws-acks: the
 * same, every notification acked by id to the server, which counts it; Socket.IO:
 * @socket.io/redis-emitter `to('user:x').emit(...)`. Publish → receive p50/p95/p99/max in one clock
 * (Date.now() at send, in the payload) and CPU per message of every process involved, acks included.
 *
 *   node dist/bench/bench/scenarios/unicast.js [--users 2000] [--rate 1000] [--seconds 10] [--reps 3]
 *     [--herald-acks through|ids] [--smoke]
 */
import { ACKING_SERVERS, ServerName } from '../lib/args';
import { progress, runMain, sleep } from '../lib/log';
import { PacedSender } from '../lib/paced';
import {
  ackedSoFar,
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
const USERS = args.num('users', 2000, 50);
const RATE = args.num('rate', 1000, 50);
const SECONDS = args.num('seconds', 10, 1);
const PER_CLIENT = args.num('per-client', 1000);
const MESSAGES = Math.round(RATE * SECONDS);
const MAX_IN_FLIGHT = 512;
const GROUPS = ['server', 'postgres', 'redis', 'nginx'] as const;

interface Run extends ScenarioRun {
  messages: number;
  received: number;
  acked: number | null;
  publishErrors: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  achievedRate: number;
  /** p99 of the second half of the messages over p99 of the first half: above 1, a queue building up. */
  p99LastOverFirst: number;
  cpuMsPerMessage: Record<string, number>;
}

type Summary = { server: ServerName } & Record<
  'p50' | 'p95' | 'p99' | 'max' | 'achievedRate' | 'p99LastOverFirst',
  Spread
> &
  Record<`${(typeof GROUPS)[number]}CpuMsPerMessage`, Spread>;

async function runServer(server: ServerName): Promise<Run[]> {
  return withTarget(server, { processes: 2, nginx: true }, async (target) => {
    const users = Array.from({ length: USERS }, (_, k) => `uc-${k}`);
    return withClients(server, target, users, { perClient: PER_CLIENT, heraldAcks: HERALD_ACKS }, async (pool) => {
      const runs: Run[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const base = (rep + 1) * 1_000_000;
        const acksBefore = await ackedSoFar(target, pool);
        const meter = await startCpuMeter(target);
        const sender = new PacedSender(MAX_IN_FLIGHT);
        const have = () => {
          let n = 0;
          for (let k = 0; k < MESSAGES; k++) if (pool.messages.has(base + k)) n++;
          return n;
        };
        const ticker = setInterval(
          () =>
            progress(
              `  ${server} rep ${rep + 1}: ${have()}/${MESSAGES} received, ${sender.inFlight} publishes in flight`,
            ),
          2000,
        );
        try {
          const { achievedRate } = await sender.run(MESSAGES, RATE, (k) =>
            target.publish(users[Math.floor(Math.random() * USERS)]!, benchPayload(base + k)),
          );
          const { errors, lastError } = sender;
          await pool.until(`${server}: all ${MESSAGES - errors} received`, () => have() >= MESSAGES - errors, 60_000);
          const acksAfter = acksBefore
            ? await untilAcked(`${server}: all acked`, target, pool, acksBefore, MESSAGES - errors, 60_000)
            : null;
          // Let the last acks and their writes land before reading CPU.
          await sleep(300);
          await pool.flush();
          const cpu = await meter.stop();
          const latencies: number[] = [];
          const halves: [number[], number[]] = [[], []];
          let received = 0;
          for (let k = 0; k < MESSAGES; k++) {
            const state = pool.messages.get(base + k);
            if (!state) continue;
            received++;
            latencies.push(state.first - state.t);
            halves[k < MESSAGES / 2 ? 0 : 1].push(state.first - state.t);
          }
          const p = percentiles(latencies);
          const p99LastOverFirst = percentiles(halves[1]).p99 / Math.max(1, percentiles(halves[0]).p99);
          const run: Run = {
            server,
            rep,
            messages: MESSAGES,
            received,
            acked: acksBefore && acksAfter ? acksAfter.count - acksBefore.count : null,
            publishErrors: errors,
            ...p,
            achievedRate,
            p99LastOverFirst,
            cpuMsPerMessage: perUnit(cpu, MESSAGES),
          };
          progress(
            `  ${server} rep ${rep + 1}: ${received}/${MESSAGES} received, p50 ${p.p50} p95 ${p.p95} p99 ${p.p99} max ${p.max} ms` +
              `${errors ? `; ${errors} publish errors (${lastError})` : ''}`,
          );
          runs.push(run);
        } finally {
          clearInterval(ticker);
        }
      }
      return runs;
    });
  });
}

async function main(): Promise<void> {
  progress(
    `unicast: ${USERS} users over 2 processes behind nginx, ${RATE}/s for ${SECONDS} s (${MESSAGES} messages), ${REPS} repetitions`,
  );
  const runs: Run[] = [];
  for (const server of SERVERS) runs.push(...(await runServer(server)));
  const keys = SERVERS.map((server) => ({ server }));
  const summary: Summary[] = summarize(runs, keys, (mine, { server }) => {
    const s = { server } as Summary;
    for (const key of ['p50', 'p95', 'p99', 'max', 'achievedRate', 'p99LastOverFirst'] as const)
      s[key] = spread(mine.map((r) => r[key]));
    for (const g of GROUPS) s[`${g}CpuMsPerMessage`] = spread(mine.map((r) => r.cpuMsPerMessage[g] ?? 0));
    return s;
  });
  const p99 = (name: ServerName) => summary.find((s) => s.server === name)?.p99.median;
  printTable(
    `unicast through nginx, ${USERS} users / 2 processes, ${RATE}/s × ${SECONDS} s: publish → receive ms, median (min–max) over ${REPS} repetition(s)`,
    [
      'server',
      'p50',
      'p95',
      'p99',
      'max',
      'sent/s',
      'p99 last/first half',
      'server CPU ms/msg',
      'PostgreSQL ms/msg',
      'Redis ms/msg',
      'nginx ms/msg',
      'p99 vs raw-ws',
      'p99 vs raw-ws-acks',
      'p99 vs socket.io',
    ],
    summary.map((s) => [
      s.server,
      formatSpread(s.p50),
      formatSpread(s.p95),
      formatSpread(s.p99),
      formatSpread(s.max),
      formatSpread(s.achievedRate),
      formatSpread(s.p99LastOverFirst),
      formatSpread(s.serverCpuMsPerMessage),
      formatSpread(s.postgresCpuMsPerMessage),
      formatSpread(s.redisCpuMsPerMessage),
      formatSpread(s.nginxCpuMsPerMessage),
      formatRatio(s.p99.median, p99('raw-ws')),
      formatRatio(s.p99.median, p99('raw-ws-acks')),
      formatRatio(s.p99.median, p99('socket.io')),
    ]),
  );
  const parameters = { users: USERS, rate: RATE, seconds: SECONDS, reps: REPS, heraldAcks: HERALD_ACKS };
  writeScenarioResult('unicast', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    complete: (mine) =>
      mine.length === REPS &&
      mine.every(
        (r) => r.publishErrors === 0 && r.received === r.messages && (r.acked === null || r.acked >= r.messages),
      ),
    notes: [
      'Herald and raw ws publish over HTTP through the same Nginx as the clients; Socket.IO publishes with the redis emitter (no HTTP hop).',
      'CPU per message counts the two server processes, the PostgreSQL backends of the private database (Herald), the whole redis-server and the Nginx workers, from /proc/<pid>/stat.',
      'The publisher (this process) and the load clients share the 2 cores.',
      'raw-ws-acks: each client sends one ack frame per notification, which the server parses and counts; its CPU per message includes that, and the run waits for every ack.',
      heraldAcksNote(HERALD_ACKS),
    ],
  });
}

runMain(main);
