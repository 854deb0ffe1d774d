/**
 * Measures the capacity constants (docs/scaling.md) on this machine: starts a private PostgreSQL (fsync on)
 * and Redis, so the WAL, every PostgreSQL process and every Redis command are this run's alone; runs the
 * idle, unicast and broadcast phases (bench/capacity/*.ts) against them, each in its own process; derives the
 * constants and writes dist/bench-results/capacity-constants.json. Copy it to bench/capacity-constants.json
 * to make it what `npm run capacity` plans with.
 *
 *   npm run bench:capacity [-- --smoke] [-- --shared-services]
 *
 * --shared-services runs against TEST_POSTGRES_URL / TEST_REDIS_URL (default the local servers) instead:
 * their WAL and Redis counters then include anyone else's work, and only this run's backends count as
 * PostgreSQL CPU.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../../test/helpers/env';
import { HERALD_MAIN, repoRoot } from '../../test/helpers/paths';
import { progress, runMain } from '../lib/log';
import { readResult, resultFile, resultsDir } from '../lib/results';
import { deriveConstants } from './derive';
import type { BroadcastResult, IdleResult, UnicastResult } from './types';

// scripts/lib is plain JavaScript that no build copies: loaded from the repository by path (as
// test/helpers/private-redis-cluster.ts does), so this runs from dist/bench too.
const { ensurePrograms, freePort, PostgresServer, RedisServer } = createRequire(__filename)(
  join(repoRoot(), 'scripts', 'lib', 'services.js'),
) as typeof import('../../scripts/lib/services');

const SMOKE = process.argv.includes('--smoke');
const SHARED = process.argv.includes('--shared-services');
const PHASES = ['idle', 'unicast', 'broadcast'] as const;

interface Services {
  postgresUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

/** A private PostgreSQL (fsync and synchronous_commit on, as the shared one) and Redis on free ports. */
async function privateServices(): Promise<Services> {
  const programs = ensurePrograms(['postgresql', 'redis-server']);
  const dir = mkdtempSync(join(tmpdir(), 'herald-capacity-'));
  chmodSync(dir, 0o755); // as root the server runs as the postgres user, who must reach its folder
  const postgres = new PostgresServer({
    bin: programs.postgresql,
    home: join(dir, 'postgres'),
    port: await freePort(),
  });
  postgres.init();
  await postgres.startAsync();
  const redisServer = new RedisServer({ binary: programs['redis-server'], port: await freePort() });
  const redis = await redisServer.spawn();
  progress(`private PostgreSQL on :${postgres.port}, Redis on :${redisServer.port}`);
  return {
    postgresUrl: postgres.url,
    redisUrl: redisServer.url,
    stop: async () => {
      postgres.stopQuietly('fast');
      if (redis.exitCode === null && redis.signalCode === null) {
        const exited = new Promise((resolve) => redis.once('exit', resolve));
        redis.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runPhase(phase: string, services: Services): Promise<void> {
  const script = join(__dirname, `${phase}.js`);
  const args = [...(SMOKE ? ['--smoke'] : []), ...(SHARED ? [] : ['--whole-server'])];
  const env = { ...process.env, TEST_POSTGRES_URL: services.postgresUrl, TEST_REDIS_URL: services.redisUrl };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit', env });
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`capacity phase ${phase} failed (${code ?? signal})`)),
    );
  });
}

function git(cwd: string, ...args: string[]): string {
  return spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
}

/**
 * Which server the replicas ran: HERALD_MAIN (this checkout's dist/apps/herald, or HERALD_SERVER_MAIN's build,
 * e.g. a clean clone of the commit while this checkout has other work in progress), the commit of the
 * checkout it was built in, and whether that checkout's server sources differ from the commit.
 */
function serverBuild(): { main: string; commit: string; sourceChanged: boolean } {
  let dir = dirname(HERALD_MAIN);
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'apps', 'herald'))) {
    if (dirname(dir) === dir) return { main: HERALD_MAIN, commit: 'unknown', sourceChanged: true };
    dir = dirname(dir);
  }
  return {
    main: HERALD_MAIN,
    commit: git(dir, 'rev-parse', 'HEAD'),
    sourceChanged: git(dir, 'status', '--porcelain', '--', 'apps/herald', 'libs/protocol') !== '',
  };
}

async function versions(services: Services): Promise<{ postgres: string; redis: string }> {
  const pg = new Client({ connectionString: services.postgresUrl });
  await pg.connect();
  const redis = new Redis(services.redisUrl);
  try {
    const { rows } = await pg.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    const info = await redis.info('server');
    return { postgres: `PostgreSQL ${rows[0]!.v}`, redis: `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}` };
  } finally {
    await pg.end();
    redis.disconnect();
  }
}

function must<T>(phase: string): T {
  const doc = readResult<T>(`capacity-${phase}`, SMOKE);
  if (!doc) throw new Error(`no result from phase ${phase}`);
  return doc.result;
}

async function main(): Promise<void> {
  const started = Date.now();
  // Other work on the machine takes cores from the run (CPU per unit holds; throughput and latency do not).
  const loadAtStart = loadavg()[0]!;
  const services: Services = SHARED
    ? { postgresUrl: TEST_POSTGRES_URL, redisUrl: TEST_REDIS_URL, stop: () => Promise.resolve() }
    : await privateServices();
  // Ctrl-C or a kill: the phase running gets it too (the terminal signals the group); the private servers go.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void services.stop().finally(() => process.exit(130));
    });
  }
  let meta: Record<string, unknown>;
  try {
    const serverVersions = await versions(services);
    for (const phase of PHASES) {
      progress(`=== capacity: ${phase} ===`);
      await runPhase(phase, services);
    }
    const where = SHARED ? 'shared (other work counted in WAL and Redis)' : 'private to the run';
    meta = {
      at: new Date().toISOString(),
      server: serverBuild(),
      benchCommit: git(repoRoot(), 'rev-parse', 'HEAD'),
      command: `npm run bench:capacity${SMOKE ? ' -- --smoke' : ''}${SHARED ? ' -- --shared-services' : ''}`,
      smoke: SMOKE,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        kernel: release(),
        loadAverage1m: { atStart: loadAtStart, atEnd: loadavg()[0]! },
      },
      postgres: `${serverVersions.postgres}, ${where}, fsync and synchronous_commit on`,
      redis: `${serverVersions.redis}, ${where}, no persistence`,
    };
  } finally {
    await services.stop();
  }
  const doc = deriveConstants(
    must<IdleResult>('idle'),
    must<UnicastResult>('unicast'),
    must<BroadcastResult>('broadcast'),
    !SHARED,
    { ...meta, durationSeconds: Math.round((Date.now() - started) / 1000) },
  );
  const file = resultFile('capacity-constants', SMOKE);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(
    `\ncapacity constants: ${file}\n(copy to bench/capacity-constants.json to plan with them; results in ${resultsDir()})\n`,
  );
}

runMain(main);
