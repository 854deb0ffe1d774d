/**
 * Unicast latency: U users over TWO server processes behind a private Nginx, R notifications/s to
 * random users for S seconds. Herald: REST publish through Nginx (committed to PostgreSQL before the
 * 202, every notification acked); raw ws: HTTP POST /publish through Nginx → Redis; Socket.IO:
 * @socket.io/redis-emitter `to('user:x').emit(...)`. Publish → receive p50/p95/p99/max in one clock
 * (Date.now() at send, in the payload) and CPU per message of every process involved.
 *
 *   node dist/bench/bench/scenarios/unicast.js [--users 2000] [--rate 1000] [--seconds 10] [--reps 3] [--smoke]
 */
import { Args, ServerName } from '../lib/args';
import { ClientPool } from '../lib/clients';
import { progress, runMain, sleep } from '../lib/log';
import { CpuMeter } from '../lib/proc';
import { writeResult } from '../lib/results';
import { perUnit, ScenarioResult, withTarget } from '../lib/scenario';
import { percentiles, spread, Spread } from '../lib/stats';
import { benchPayload } from '../lib/targets';
import { formatRatio, formatSpread, printTable } from '../lib/table';

const args = new Args();
const USERS = args.num('users', 2000, 50);
const RATE = args.num('rate', 1000, 50);
const SECONDS = args.num('seconds', 10, 1);
const REPS = args.num('reps', 3, 1);
const PER_CLIENT = args.num('per-client', 1000);
const SERVERS = args.servers();
const MESSAGES = Math.round(RATE * SECONDS);
const GROUPS = ['server', 'postgres', 'redis', 'nginx'] as const;

interface Run {
  server: ServerName;
  rep: number;
  messages: number;
  received: number;
  acked: number | null;
  publishErrors: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  achievedRate: number;
  cpuMsPerMessage: Record<string, number>;
}

type Summary = { server: ServerName } & Record<'p50' | 'p95' | 'p99' | 'max' | 'achievedRate', Spread> &
  Record<`${(typeof GROUPS)[number]}CpuMsPerMessage`, Spread>;

async function runServer(server: ServerName): Promise<Run[]> {
  return withTarget(server, { processes: 2, nginx: true }, async (target) => {
    const users = Array.from({ length: USERS }, (_, k) => `uc-${k}`);
    const { pool, summary } = await ClientPool.connect(server, target.clientKind, target.clientUrls, users, {
      perClient: PER_CLIENT,
    });
    const runs: Run[] = [];
    try {
      if (summary.connected !== USERS)
        throw new Error(`${server}: only ${summary.connected}/${USERS} connected: ${summary.errors.join('; ')}`);
      for (let rep = 0; rep < REPS; rep++) {
        const base = (rep + 1) * 1_000_000;
        const acksBefore = pool.acksOk;
        const support = await target.supportPids();
        const meter = new CpuMeter({ server: target.serverPids(), ...support }).start();
        const started = Date.now();
        const inFlight = new Set<Promise<void>>();
        let errors = 0;
        let lastError = '';
        const have = () => {
          let n = 0;
          for (let k = 0; k < MESSAGES; k++) if (pool.messages.has(base + k)) n++;
          return n;
        };
        const ticker = setInterval(
          () =>
            progress(
              `  ${server} rep ${rep + 1}: ${have()}/${MESSAGES} received, ${inFlight.size} publishes in flight`,
            ),
          2000,
        );
        try {
          for (let k = 0; k < MESSAGES; k++) {
            const wait = started + (k * 1000) / RATE - Date.now();
            if (wait > 0) await sleep(wait);
            const work = target
              .publish(users[Math.floor(Math.random() * USERS)]!, benchPayload(base + k))
              .catch((error: unknown) => {
                errors++;
                lastError = error instanceof Error ? error.message : String(error);
              });
            inFlight.add(work);
            void work.finally(() => inFlight.delete(work));
            if (inFlight.size >= 512) await Promise.race(inFlight);
          }
          const publishedAt = Date.now();
          await Promise.all(inFlight);
          await pool.until(`${server}: all ${MESSAGES - errors} received`, () => have() >= MESSAGES - errors, 60_000);
          if (target.clientKind === 'herald') {
            await pool.until(`${server}: all acked`, () => pool.acksOk - acksBefore >= MESSAGES - errors, 60_000);
          }
          // Let the last acks and their writes land before reading CPU.
          await sleep(300);
          await pool.flush();
          const cpu = meter.stop();
          const latencies: number[] = [];
          let received = 0;
          for (let k = 0; k < MESSAGES; k++) {
            const state = pool.messages.get(base + k);
            if (!state) continue;
            received++;
            latencies.push(state.first - state.t);
          }
          const p = percentiles(latencies);
          const run: Run = {
            server,
            rep,
            messages: MESSAGES,
            received,
            acked: target.clientKind === 'herald' ? pool.acksOk - acksBefore : null,
            publishErrors: errors,
            ...p,
            achievedRate: (MESSAGES * 1000) / Math.max(1, publishedAt - started),
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
    } finally {
      await pool.close();
    }
    return runs;
  });
}

async function main(): Promise<void> {
  progress(
    `unicast: ${USERS} users over 2 processes behind nginx, ${RATE}/s for ${SECONDS} s (${MESSAGES} messages), ${REPS} repetitions`,
  );
  const runs: Run[] = [];
  for (const server of SERVERS) runs.push(...(await runServer(server)));
  const summary: Summary[] = SERVERS.map((server) => {
    const mine = runs.filter((r) => r.server === server);
    const s = { server } as Summary;
    for (const key of ['p50', 'p95', 'p99', 'max', 'achievedRate'] as const) s[key] = spread(mine.map((r) => r[key]));
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
      'server CPU ms/msg',
      'PostgreSQL ms/msg',
      'Redis ms/msg',
      'nginx ms/msg',
      'p99 vs raw-ws',
      'p99 vs socket.io',
    ],
    summary.map((s) => [
      s.server,
      formatSpread(s.p50),
      formatSpread(s.p95),
      formatSpread(s.p99),
      formatSpread(s.max),
      formatSpread(s.achievedRate),
      formatSpread(s.serverCpuMsPerMessage),
      formatSpread(s.postgresCpuMsPerMessage),
      formatSpread(s.redisCpuMsPerMessage),
      formatSpread(s.nginxCpuMsPerMessage),
      formatRatio(s.p99.median, p99('raw-ws')),
      formatRatio(s.p99.median, p99('socket.io')),
    ]),
  );
  const complete: Record<string, boolean> = {};
  for (const server of SERVERS) {
    const mine = runs.filter((r) => r.server === server);
    complete[server] =
      mine.length === REPS &&
      mine.every(
        (r) => r.publishErrors === 0 && r.received === r.messages && (r.acked === null || r.acked >= r.messages),
      );
  }
  const result: ScenarioResult<Summary, Run> = {
    servers: SERVERS,
    complete,
    summary,
    runs,
    notes: [
      'Herald and raw ws publish over HTTP through the same Nginx as the clients; Socket.IO publishes with the redis emitter (no HTTP hop).',
      'CPU per message counts the two server processes, the PostgreSQL backends of the private database (Herald), the whole redis-server and the Nginx workers, from /proc/<pid>/stat.',
      'The publisher (this process) and the load clients share the 2 cores.',
    ],
  };
  writeResult('unicast', args.smoke, { users: USERS, rate: RATE, seconds: SECONDS, reps: REPS }, result);
}

runMain(main);
