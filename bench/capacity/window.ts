/**
 * What one stretch of work costs every part of Herald: counters of PostgreSQL, Redis and the replicas read
 * before and after a window, plus the CPU of their processes from /proc, as one flat record of differences.
 * The capacity constants are these differences per unit of work, less what the same setup does idle.
 */
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../../test/helpers/env';
import { parseMetrics } from '../../test/helpers/metrics';
import type { ClientPool } from '../lib/clients';
import { sleep } from '../lib/log';
import { CpuMeter } from '../lib/proc';
import { withClients, withTarget } from '../lib/scenario';
import type { Target } from '../lib/targets';

/** Named counters (`pg.walBytes`, `redis.cmd.evalsha`, `cpu.server`, …); a window holds their differences. */
export type Counters = Record<string, number>;

/** A measured window: how long it lasted, how many units of work it did, and what every counter moved. */
export interface Window {
  label: string;
  seconds: number;
  units: number;
  delta: Counters;
}

/**
 * Replica settings of the unicast and broadcast phases: WebSocket pings and presence beats every 10 minutes,
 * so none falls inside their windows. Their cost is per connection and comes in bursts (every connection's
 * beat at once), which would swamp a few commands per broadcast; the idle phase measures it at the defaults.
 */
const QUIET_CONNECTIONS: Record<string, string> = {
  HERALD_HEARTBEAT_MS: '600000',
  HERALD_PRESENCE_HEARTBEAT_MS: '600000',
};

/** After the connects, before the idle window: their last writes, and PostgreSQL's statistics of them, land. */
const SETTLE_MS = 5000;

/**
 * The setup of the unicast and broadcast phases: `replicas` replicas with quiet connections, `users` acking
 * clients (acks through), the store counters open, and a window of that setup idle for `idleSeconds` after
 * the connects settled (what every measured window has the same of, to subtract). `work` measures the rest.
 */
export async function measuredSetup<T>(
  options: { name: string; replicas: number; users: string[]; perClient: number; idleSeconds: number },
  work: (setup: { target: Target; pool: ClientPool; counters: StoreCounters; idle: Window }) => Promise<T>,
): Promise<T> {
  const wholeServer = process.argv.includes('--whole-server');
  return withTarget('herald', { processes: options.replicas, heraldEnv: QUIET_CONNECTIONS }, (target) =>
    withClients(
      options.name,
      target,
      options.users,
      { perClient: options.perClient, heraldAcks: 'through' },
      async (pool) => {
        const counters = await StoreCounters.open(target, wholeServer);
        try {
          await sleep(SETTLE_MS);
          const idle = await counters.window('idle', async () => {
            await sleep(options.idleSeconds * 1000);
            return 1;
          });
          return await work({ target, pool, counters, idle });
        } finally {
          await counters.close();
        }
      },
    ),
  );
}

/** Commands a measurement makes itself (INFO), left out of the command counts. */
const OWN_COMMANDS = new Set(['info']);

function difference(after: Counters, before: Counters): Counters {
  const out: Counters = {};
  for (const key of new Set([...Object.keys(after), ...Object.keys(before)]))
    out[key] = (after[key] ?? 0) - (before[key] ?? 0);
  return out;
}

/** The Redis counters of INFO stats, cpu, memory and commandstats. */
function parseRedisInfo(info: string): Counters {
  const out: Counters = { 'redis.commands': 0 };
  for (const line of info.split('\r\n')) {
    const stat = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (stat) {
      const [, name, calls, usec] = stat as unknown as [string, string, string, string];
      if (OWN_COMMANDS.has(name)) continue;
      out[`redis.cmd.${name}`] = Number(calls);
      out[`redis.usec.${name}`] = Number(usec);
      out['redis.commands']! += Number(calls);
      continue;
    }
    const field =
      /^(used_cpu_sys|used_cpu_user|used_memory|total_commands_processed|total_net_input_bytes|total_net_output_bytes):([\d.]+)$/.exec(
        line,
      );
    if (field) out[`redis.${field[1]!}`] = Number(field[2]);
  }
  out['redis.cpuMs'] = ((out['redis.used_cpu_sys'] ?? 0) + (out['redis.used_cpu_user'] ?? 0)) * 1000;
  return out;
}

/**
 * Reads the counters of one Herald deployment: its database (WAL, tuples and sizes per table), Redis (INFO),
 * each replica's /metrics (bus messages, deliveries). `wholeServer`: the PostgreSQL server and Redis serve
 * this run alone (private ones), so their WAL and every PostgreSQL process count as this run's.
 */
export class StoreCounters {
  private constructor(
    private readonly pg: Client,
    private readonly redis: Redis,
    private readonly target: Target,
    readonly wholeServer: boolean,
  ) {}

  static async open(target: Target, wholeServer: boolean): Promise<StoreCounters> {
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${target.database!}`;
    const pg = new Client({ connectionString: url.toString() });
    await pg.connect();
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    return new StoreCounters(pg, redis, target, wholeServer);
  }

  async close(): Promise<void> {
    await this.pg.end();
    this.redis.disconnect();
  }

  async read(): Promise<Counters> {
    const out: Counters = {};
    const { rows: wal } = await this.pg.query<Record<string, number>>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8 AS "walBytes",
              w.wal_records::float8 AS "walRecords", w.wal_fpi::float8 AS "walFullPages",
              d.xact_commit::float8 AS commits, pg_database_size(current_database())::float8 AS "databaseBytes"
         FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()`,
    );
    for (const [key, value] of Object.entries(wal[0]!)) out[`pg.${key}`] = Number(value);
    const { rows: tables } = await this.pg.query<{
      name: string;
      ins: number;
      upd: number;
      del: number;
      bytes: number;
    }>(
      // A partition (ADR 0020) counts as its table: the breakdown names notifications, not notifications_p….
      `SELECT coalesce(p.relname, s.relname) AS name, sum(s.n_tup_ins)::float8 AS ins,
              sum(s.n_tup_upd)::float8 AS upd, sum(s.n_tup_del)::float8 AS del,
              sum(pg_total_relation_size(s.relid))::float8 AS bytes
         FROM pg_stat_user_tables s
         LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
         LEFT JOIN pg_class p ON p.oid = i.inhparent
        WHERE s.schemaname = 'public' AND s.relname <> 'herald_migrations'
        GROUP BY 1`,
    );
    out['pg.rows'] = 0;
    out['pg.tableBytes'] = 0;
    for (const t of tables) {
      out[`pg.ins.${t.name}`] = t.ins;
      out[`pg.upd.${t.name}`] = t.upd;
      out[`pg.del.${t.name}`] = t.del;
      out[`pg.bytes.${t.name}`] = t.bytes;
      out['pg.rows'] += t.ins + t.upd + t.del;
      out['pg.tableBytes'] += t.bytes;
    }
    Object.assign(out, parseRedisInfo(await this.redis.info('stats', 'cpu', 'memory', 'commandstats')));
    for (const base of this.target.replicaUrls ?? []) {
      const samples = parseMetrics(await (await fetch(`${base}/metrics`)).text());
      for (const [series, value] of samples) {
        const bus = /^herald_bus_messages_total\{direction="(in|out)"\}$/.exec(series);
        if (bus) out[`bus.${bus[1]!}`] = (out[`bus.${bus[1]!}`] ?? 0) + value;
        const delivery = /^herald_deliveries_total\{outcome="(\w+)"\}$/.exec(series);
        if (delivery) out[`deliveries.${delivery[1]!}`] = (out[`deliveries.${delivery[1]!}`] ?? 0) + value;
      }
    }
    return out;
  }

  /**
   * The processes whose CPU a unit of work costs: the replicas, the PostgreSQL backends of this database and,
   * on a private server, every PostgreSQL process (WAL writer, checkpointer, autovacuum: `postgresAll`).
   * Redis's CPU comes from INFO (`redis.cpuMs`).
   */
  private async processes(): Promise<Record<string, number[]>> {
    const { rows } = await this.pg.query<{ pid: number; datname: string | null }>(
      'SELECT pid, datname FROM pg_stat_activity WHERE pid <> pg_backend_pid()',
    );
    const groups: Record<string, number[]> = {
      server: this.target.serverPids(),
      postgres: rows.filter((r) => r.datname === this.target.database).map((r) => r.pid),
    };
    if (this.wholeServer) groups.postgresAll = rows.map((r) => r.pid);
    return groups;
  }

  /**
   * Runs `work` (which returns how many units it did) as one window: counters before, CPU sampled throughout,
   * `settleMs` after it for the last writes and PostgreSQL's statistics (flushed at most once a second) to
   * land, counters after.
   */
  async window(label: string, work: () => Promise<number>, settleMs = 2500): Promise<Window> {
    const before = await this.read();
    const meter = await new CpuMeter(() => this.processes(), 1000).start();
    const started = performance.now();
    const units = await work();
    await sleep(settleMs);
    const cpu = await meter.stop();
    const seconds = (performance.now() - started) / 1000;
    const delta = difference(await this.read(), before);
    for (const [group, ms] of Object.entries(cpu)) delta[`cpu.${group}`] = ms;
    return { label, seconds, units, delta };
  }
}

/**
 * A window's counters per unit of work, less what `idle` (the same setup doing nothing) moves in as many
 * seconds: the cost of the work alone. Sizes (`pg.bytes.*`, `redis.used_memory`) are not rates; they are
 * divided as measured.
 */
export function perUnit(window: Window, idle?: Window): Counters {
  const out: Counters = {};
  for (const [key, value] of Object.entries(window.delta)) {
    const background = idle && !isSize(key) ? ((idle.delta[key] ?? 0) / idle.seconds) * window.seconds : 0;
    out[key] = (value - background) / Math.max(1, window.units);
  }
  return out;
}

/** Counters that measure how much is held, not how much was done. */
function isSize(key: string): boolean {
  return (
    key.startsWith('pg.bytes.') || key === 'pg.tableBytes' || key === 'pg.databaseBytes' || key === 'redis.used_memory'
  );
}
