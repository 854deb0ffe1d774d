/**
 * Durable ingestion: REST publishes per second, one recipient each (random among --users offline users),
 * closed-loop publishers in separate processes with concurrency ramping (16, 64, 256, 512 by default) for
 * --seconds each, sent straight to two Herald replicas. Every 202 is verified in PostgreSQL afterwards
 * (its notification row and its delivery row, counted by id). For context, the raw ws baseline's HTTP
 * publish rate (POST /publish → Redis PUBLISH, nothing stored) under the same load. Socket.IO has no
 * publish API to load (the emitter writes to Redis directly): n/a.
 *
 *   node dist/bench/bench/scenarios/ingest.js [--levels 16,64,256,512] [--seconds 5] [--publishers 2] [--reps 3] [--smoke]
 */
import type { ServerName } from '../lib/args';
import { progress, runMain } from '../lib/log';
import { runPublishers } from '../lib/publishers';
import {
  perUnit,
  scenarioArgs,
  ScenarioRun,
  startCpuMeter,
  summarize,
  withTarget,
  writeScenarioResult,
} from '../lib/scenario';
import { percentiles, spread, Spread } from '../lib/stats';
import { TEST_API_KEY } from '../../test/helpers/replica';
import { formatRatio, formatSpread, printTable } from '../lib/table';

const { args, reps: REPS, servers } = scenarioArgs();
const LEVELS = args.nums('levels', [16, 64, 256, 512], [4]);
const SECONDS = args.num('seconds', 5, 1);
const PUBLISHERS = args.num('publishers', 2, 1);
const USERS = args.num('users', 1000, 20);
const SERVERS = servers.filter((s) => s !== 'socket.io');

interface Run extends ScenarioRun {
  concurrency: number;
  accepted: number;
  failed: number;
  statuses: Record<string, number>;
  perSecond: number;
  latencyP50: number;
  latencyP99: number;
  verified: number | null;
  cpuMsPerPublish: Record<string, number>;
}

interface Summary {
  server: ServerName;
  concurrency: number;
  perSecond: Spread;
  latencyP50: Spread;
  latencyP99: Spread;
  failed: number;
  verifiedAll: boolean | null;
}

async function runServer(server: ServerName): Promise<Run[]> {
  return withTarget(server, { processes: 2 }, async (target) => {
    const users = Array.from({ length: USERS }, (_, k) => `in-${k}`);
    const runs: Run[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      for (const concurrency of LEVELS) {
        progress(`  ${server} rep ${rep + 1}: ${concurrency} concurrent publishes for ${SECONDS} s`);
        const meter = await startCpuMeter(target, ['postgres', 'redis']);
        const result = await runPublishers(PUBLISHERS, {
          kind: server === 'herald' ? 'herald' : 'raw',
          urls: target.httpUrls,
          apiKey: TEST_API_KEY,
          users,
          concurrency,
          durationMs: SECONDS * 1000,
        });
        const cpu = await meter.stop();
        let verified: number | null = null;
        if (target.query) {
          const [row] = await target.query<{ n: string; d: string }>(
            `SELECT (SELECT count(*) FROM notifications WHERE id = ANY($1::uuid[])) AS n,
                    (SELECT count(*) FROM deliveries WHERE notification_id = ANY($1::uuid[])) AS d`,
            [result.ids],
          );
          verified = Math.min(Number(row?.n), Number(row?.d));
          if (verified !== result.ok)
            throw new Error(`herald: ${row?.n} notifications and ${row?.d} deliveries stored for ${result.ok} 202s`);
        }
        const lat = percentiles(result.latencies);
        const run: Run = {
          server,
          rep,
          concurrency,
          accepted: result.ok,
          failed: result.failed,
          statuses: result.statuses,
          perSecond: result.perSecond,
          latencyP50: lat.p50,
          latencyP99: lat.p99,
          verified,
          cpuMsPerPublish: perUnit(cpu, result.ok),
        };
        progress(
          `  ${server} rep ${rep + 1} c=${concurrency}: ${result.perSecond.toFixed(0)}/s (${result.ok} accepted, ${result.failed} failed ${JSON.stringify(result.statuses)}), ` +
            `p50 ${lat.p50} ms p99 ${lat.p99} ms${verified === null ? '' : `, ${verified}/${result.ok} verified in PostgreSQL`}`,
        );
        runs.push(run);
      }
    }
    return runs;
  });
}

async function main(): Promise<void> {
  progress(
    `ingest: concurrency ${LEVELS.join(', ')}, ${SECONDS} s each, ${PUBLISHERS} publisher processes, ${REPS} repetitions`,
  );
  const runs: Run[] = [];
  for (const server of SERVERS) runs.push(...(await runServer(server)));
  const keys = SERVERS.flatMap((server) => LEVELS.map((concurrency) => ({ server, concurrency })));
  const summary: Summary[] = summarize(runs, keys, (mine, key) => ({
    ...key,
    perSecond: spread(mine.map((r) => r.perSecond)),
    latencyP50: spread(mine.map((r) => r.latencyP50)),
    latencyP99: spread(mine.map((r) => r.latencyP99)),
    failed: mine.reduce((s, r) => s + r.failed, 0),
    verifiedAll: key.server === 'herald' ? mine.every((r) => r.verified === r.accepted) : null,
  }));
  const best = (server: ServerName) =>
    Math.max(...summary.filter((s) => s.server === server).map((s) => s.perSecond.median));
  printTable(
    `ingestion, 2 processes, one recipient per publish: median (min–max) over ${REPS} repetition(s)`,
    ['server', 'concurrency', 'publishes/s', 'latency p50 ms', 'latency p99 ms', 'failed', 'every 202 in PostgreSQL'],
    [
      ...summary.map((s) => [
        s.server,
        s.concurrency,
        formatSpread(s.perSecond),
        formatSpread(s.latencyP50),
        formatSpread(s.latencyP99),
        s.failed,
        s.verifiedAll === null ? 'n/a (not stored)' : s.verifiedAll ? 'yes' : 'NO',
      ]),
      ['socket.io', '—', 'n/a (no publish API; emitter)', '', '', '', 'n/a'],
    ],
  );
  printTable(
    'saturation (best median over the levels)',
    ['server', 'publishes/s', 'vs raw-ws'],
    SERVERS.map((s) => [s, best(s), formatRatio(best(s), SERVERS.includes('raw-ws') ? best('raw-ws') : undefined)]),
  );
  const parameters = { levels: LEVELS, seconds: SECONDS, publishers: PUBLISHERS, reps: REPS, users: USERS };
  writeScenarioResult('ingest', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    complete: (mine) =>
      mine.length === REPS * LEVELS.length &&
      mine.every((r) => r.failed === 0 && r.accepted > 0 && (r.verified === null || r.verified === r.accepted)),
    notes: [
      'Publishers post straight to the two processes (no Nginx), over keep-alive HTTP, from separate processes sharing the 2 cores.',
      'Herald: a 202 means the notification and its delivery are committed; every id is counted in notifications and deliveries afterwards.',
      'raw-ws stores nothing: its rate is the HTTP + Redis PUBLISH ceiling, for context only. Socket.IO has no HTTP publish API: n/a.',
    ],
  });
}

runMain(main);
