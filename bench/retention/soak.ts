/**
 * Retention soak (issue 26; ADR 0020): two Herald replicas behind Nginx with a short HERALD_RETENTION_HOURS,
 * --rate publishes/s for --seconds (unicast to random connected users who ack, and one everyone-broadcast
 * every --broadcast-every publishes), while the total relation size of the database (every table, partition,
 * index and TOAST of the public schema) is sampled. After the first two retention periods it must stay
 * within 10% of its median: retention drops what publishes add.
 *
 *   node dist/bench/bench/retention/soak.js [--seconds 600] [--rate 500] [--retention-seconds 60] [--users 1000]
 *     [--sample-seconds 5] [--smoke]
 */
import { Args } from '../lib/args';
import { progress, runMain } from '../lib/log';
import { PacedSender } from '../lib/paced';
import { writeResult } from '../lib/results';
import { withClients, withTarget } from '../lib/scenario';
import { benchPayload } from '../lib/targets';
import { printTable } from '../lib/table';

const args = new Args();
const SECONDS = args.num('seconds', 600, 32);
const RATE = args.num('rate', 500, 100);
const RETENTION_S = args.num('retention-seconds', 60, 10);
const USERS = args.num('users', 1000, 50);
const SAMPLE_S = args.num('sample-seconds', 5, 1);
const BROADCAST_EVERY = args.num('broadcast-every', 500, 100);
/**
 * How far the size may stray from its median once two retention periods have passed. The smoke run's
 * database is about 4 MiB, where one window's partitions (three tables and their indexes, each with its
 * first pages) made while the oldest is not yet dropped are already 0.3-0.6 MiB: 25% there.
 */
const BOUND = args.smoke ? 0.25 : 0.1;
const MAX_IN_FLIGHT = 256;

interface Sample {
  at: number;
  bytes: number;
  notifications: number;
  partitions: number;
}

interface TableSize {
  name: string;
  tableBytes: number;
  indexBytes: number;
}

export interface SoakResult {
  published: number;
  received: number;
  acked: number;
  publishErrors: number;
  samples: Sample[];
  /** At the end, each table with its partitions: heap (with TOAST) and index bytes, largest first. */
  tables: TableSize[];
  /** Samples after two retention periods: smallest, median, largest total relation size. */
  steady: { from: number; min: number; median: number; max: number; worstDeviation: number };
  withinBound: boolean;
}

const SIZE_SQL = `
  SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')) AS bytes,
         (SELECT count(*)::int FROM notifications) AS notifications,
         (SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'notifications'::regclass) AS partitions`;

/** Each table of the public schema with its partitions folded in (a partition counts as its table). */
const TABLES_SQL = `
  SELECT coalesce(p.relname, c.relname) AS name, sum(pg_table_size(c.oid))::float8 AS "tableBytes",
         sum(pg_indexes_size(c.oid))::float8 AS "indexBytes"
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
    LEFT JOIN pg_class p ON p.oid = i.inhparent
   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
   GROUP BY 1
   ORDER BY sum(pg_total_relation_size(c.oid)) DESC`;

async function main(): Promise<void> {
  if (SECONDS <= 2 * RETENTION_S)
    throw new Error(
      `--seconds (${SECONDS}) must exceed two retention periods (2 × --retention-seconds = ${2 * RETENTION_S}): the size is judged after them`,
    );
  const publishes = Math.round(RATE * SECONDS);
  progress(
    `soak: ${RATE} publishes/s for ${SECONDS} s (${publishes}) to ${USERS} acking users, retention ${RETENTION_S} s, size sampled every ${SAMPLE_S} s`,
  );
  const result = await withTarget(
    'herald',
    {
      processes: 2,
      nginx: true,
      heraldEnv: { HERALD_RETENTION_HOURS: String(RETENTION_S / 3600), HERALD_INBOX_RETENTION_DAYS: '0' },
    },
    async (target) => {
      const users = Array.from({ length: USERS }, (_, k) => `soak-${k}`);
      return withClients('soak', target, users, { perClient: 1000, heraldAcks: 'through' }, async (pool) => {
        const samples: Sample[] = [];
        const started = Date.now();
        const sample = async () => {
          const [row] = await target.query!<{ bytes: string; notifications: number; partitions: number }>(SIZE_SQL);
          samples.push({
            at: (Date.now() - started) / 1000,
            bytes: Number(row!.bytes),
            notifications: row!.notifications,
            partitions: row!.partitions,
          });
        };
        const sampler = setInterval(() => {
          void sample().then(() => {
            const last = samples[samples.length - 1]!;
            progress(
              `  ${last.at.toFixed(0)} s: ${(last.bytes / 2 ** 20).toFixed(1)} MiB, ${last.notifications} notifications, ${last.partitions} partitions`,
            );
          });
        }, SAMPLE_S * 1000);
        const sender = new PacedSender(MAX_IN_FLIGHT);
        try {
          await sender.run(publishes, RATE, (k) => {
            const payload = benchPayload(k);
            return k % BROADCAST_EVERY === BROADCAST_EVERY - 1
              ? target.broadcast(payload)
              : target.publish(users[Math.floor(Math.random() * USERS)]!, payload);
          });
        } finally {
          clearInterval(sampler);
        }
        await pool.until(
          'soak: every unicast received',
          () => countReceived(pool, publishes) >= publishes - sender.errors,
          60_000,
        );
        await pool.flush();
        await sample();
        const tables = await target.query!<TableSize>(TABLES_SQL);
        const from = 2 * RETENTION_S;
        const steadySizes = samples.filter((s) => s.at >= from).map((s) => s.bytes);
        if (steadySizes.length === 0)
          throw new Error(`no sample after ${from} s: run longer than two retention periods`);
        const sorted = [...steadySizes].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)]!;
        const worstDeviation = Math.max(...sorted.map((b) => Math.abs(b - median) / median));
        const soak: SoakResult = {
          published: publishes,
          received: countReceived(pool, publishes),
          acked: pool.acksOk,
          publishErrors: sender.errors,
          samples,
          tables,
          steady: { from, min: sorted[0]!, median, max: sorted[sorted.length - 1]!, worstDeviation },
          withinBound: worstDeviation <= BOUND,
        };
        if (sender.errors) progress(`  ${sender.errors} publish errors (${sender.lastError})`);
        return soak;
      });
    },
  );
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  printTable(
    `retention soak: ${RATE}/s for ${SECONDS} s, retention ${RETENTION_S} s: total relation size after ${result.steady.from} s`,
    [
      'published',
      'received',
      'publish errors',
      'min MiB',
      'median MiB',
      'max MiB',
      'worst vs median',
      `within ${BOUND * 100}%`,
    ],
    [
      [
        String(result.published),
        String(result.received),
        String(result.publishErrors),
        mib(result.steady.min),
        mib(result.steady.median),
        mib(result.steady.max),
        `${(result.steady.worstDeviation * 100).toFixed(1)}%`,
        result.withinBound ? 'yes' : 'NO',
      ],
    ],
  );
  printTable(
    `at the end: ${result.samples[result.samples.length - 1]!.notifications} notifications kept`,
    ['table (with its partitions)', 'table MiB', 'indexes MiB'],
    result.tables
      .filter((t) => t.tableBytes + t.indexBytes >= 2 ** 17)
      .map((t) => [t.name, mib(t.tableBytes), mib(t.indexBytes)]),
  );
  writeResult(
    'soak',
    args.smoke,
    { seconds: SECONDS, rate: RATE, retentionSeconds: RETENTION_S, users: USERS },
    result,
  );
  if (!result.withinBound)
    throw new Error(`the size strayed ${(result.steady.worstDeviation * 100).toFixed(1)}% from its median`);
}

/** Publishes received at least once (broadcasts count once, by any user). */
function countReceived(pool: { messages: Map<number, unknown> }, publishes: number): number {
  let n = 0;
  for (let k = 0; k < publishes; k++) if (pool.messages.has(k)) n++;
  return n;
}

runMain(main);
