/**
 * Idle connections: per server, one process holding N idle connections (default 5 000 and 19 000; the
 * machine caps open files near 20 000 per process). Reports the connect rate (handshakes/s with the
 * load clients in separate processes) and the server's RSS per connection after a full GC (run through
 * the inspector: every server process starts with --inspect on loopback), minus its RSS before connecting.
 *
 *   node dist/bench/bench/scenarios/idle.js [--sizes 5000,19000] [--reps 3] [--servers herald,raw-ws,socket.io] [--smoke]
 */
import type { ServerName } from '../lib/args';
import { ClientPool } from '../lib/clients';
import { progress, runMain, sleep } from '../lib/log';
import { rssBytes } from '../lib/proc';
import { scenarioArgs, ScenarioRun, summarize, withTarget, writeScenarioResult } from '../lib/scenario';
import { spread, Spread } from '../lib/stats';
import { formatRatio, formatSpread, printTable } from '../lib/table';

const { args, reps: REPS, servers: SERVERS } = scenarioArgs();
const SIZES = args.nums('sizes', [5000, 19000], [50]);
const PER_CLIENT = args.num('per-client', 5000);
const SETTLE_MS = args.num('settle-ms', 3000, 500);

interface Run extends ScenarioRun {
  size: number;
  connected: number;
  failed: number;
  connectMs: number;
  connectPerSecond: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerConnectionKiB: number;
  errors: string[];
}

interface Summary {
  server: ServerName;
  size: number;
  connectedMin: number;
  connectPerSecond: Spread;
  rssPerConnectionKiB: Spread;
  rssAfterMiB: Spread;
}

async function once(server: ServerName, size: number, rep: number): Promise<Run> {
  return withTarget(server, { processes: 1, inspect: true }, async (target) => {
    const pid = target.serverPids()[0]!;
    await sleep(500);
    await target.gc();
    const before = rssBytes(pid);
    const users = Array.from({ length: size }, (_, k) => `idle-${rep}-${k}`);
    const { pool, summary } = await ClientPool.connect(
      `${server} ${size}`,
      target.clientKind,
      target.clientUrls,
      users,
      {
        perClient: PER_CLIENT,
        concurrency: 64,
      },
    );
    try {
      await sleep(SETTLE_MS);
      await target.gc();
      const after = rssBytes(pid);
      const run: Run = {
        server,
        size,
        rep,
        connected: summary.connected,
        failed: summary.failed,
        connectMs: summary.ms,
        connectPerSecond: summary.perSecond,
        rssBeforeMiB: before / 2 ** 20,
        rssAfterMiB: after / 2 ** 20,
        rssPerConnectionKiB: (after - before) / 1024 / Math.max(1, summary.connected),
        errors: summary.errors,
      };
      progress(
        `  ${server} ${size} rep ${rep + 1}: ${run.connected} connected (${run.failed} failed) at ${run.connectPerSecond.toFixed(0)}/s, ` +
          `${run.rssPerConnectionKiB.toFixed(1)} KiB/connection${run.errors.length ? `; errors: ${run.errors.join('; ')}` : ''}`,
      );
      return run;
    } finally {
      await pool.close();
    }
  });
}

async function main(): Promise<void> {
  progress(`idle: sizes ${SIZES.join(', ')}, ${REPS} repetitions, servers ${SERVERS.join(', ')}`);
  const runs: Run[] = [];
  for (const size of SIZES) {
    for (let rep = 0; rep < REPS; rep++) {
      for (const server of SERVERS) runs.push(await once(server, size, rep));
    }
  }
  const keys = SIZES.flatMap((size) => SERVERS.map((server) => ({ server, size })));
  const summary: Summary[] = summarize(runs, keys, (mine, key) => ({
    ...key,
    connectedMin: Math.min(...mine.map((r) => r.connected)),
    connectPerSecond: spread(mine.map((r) => r.connectPerSecond)),
    rssPerConnectionKiB: spread(mine.map((r) => r.rssPerConnectionKiB)),
    rssAfterMiB: spread(mine.map((r) => r.rssAfterMiB)),
  }));
  const find = (server: ServerName, size: number) => summary.find((s) => s.server === server && s.size === size);
  printTable(
    `idle connections, one server process each: median (min–max) over ${REPS} repetition(s)`,
    [
      'server',
      'connections',
      'connected (min)',
      'connect/s',
      'RSS KiB/conn after GC',
      'RSS MiB',
      'RSS vs raw-ws',
      'RSS vs socket.io',
    ],
    summary.map((s) => [
      s.server,
      s.size,
      s.connectedMin,
      formatSpread(s.connectPerSecond),
      formatSpread(s.rssPerConnectionKiB),
      formatSpread(s.rssAfterMiB),
      formatRatio(s.rssPerConnectionKiB.median, find('raw-ws', s.size)?.rssPerConnectionKiB.median),
      formatRatio(s.rssPerConnectionKiB.median, find('socket.io', s.size)?.rssPerConnectionKiB.median),
    ]),
  );
  const parameters = { sizes: SIZES, reps: REPS, perClient: PER_CLIENT, settleMs: SETTLE_MS };
  writeScenarioResult('idle', args.smoke, parameters, {
    servers: SERVERS,
    summary,
    runs,
    complete: (mine) => mine.every((r) => r.connected === r.size),
    notes: [
      'RSS per connection = (RSS after connecting and a full GC − RSS before connecting, after a full GC) / connections.',
      'GC runs through the inspector (HeapProfiler.collectGarbage); each server process starts with --inspect=127.0.0.1:<port>.',
      'Connect rate: all handshakes (Herald: JWT, registration, welcome) from load clients in separate processes, 64 in flight per client process.',
    ],
  });
}

runMain(main);
