/**
 * The upgrade's conversion, measured (issue 21, item 5; docs/deployment.md, "Upgrading to the stream
 * record"): a private database at the previous release's schema, filled with --deliveries delivery rows in
 * a realistic mix, then converted one migration at a time, each timed. Dropped afterwards.
 *
 * The fill: --users users, each subscribed to 2 of 10 topics; 40% of the deliveries from user-list
 * publishes of 3 users, 40% from topic broadcasts, 20% from everyone broadcasts; published over the last
 * 7 days with a 1-day TTL (none within an hour of it). Past their TTL: 85% acked, 10% expired, 3% failed, 2% still open (the previous
 * sweep behind); live: 60% acked, 12% sent, 25% pending, 3% failed. Send checks name the pending users of
 * live broadcasts, 100 a record; replay checks cover a recent seq range of some users.
 *
 *   npm run bench:upgrade -- [--deliveries 3000000] [--users 20000] [--checks 2000] [--replays 5000] [--smoke]
 */
import { createDataSource, MIGRATIONS, runMigrations } from '../../apps/herald/src/database/data-source';
import { RetentionRepository } from '../../apps/herald/src/record/retention.repository';
import { partitionWidthMs, windowsToMake } from '../../apps/herald/src/retention/partition-plan';
import { createTestDatabase, TestDatabase } from '../../test/helpers/database';
import { migrateThrough, OLD_MIGRATIONS } from '../../test/helpers/old-record';
import { Args } from '../lib/args';
import { progress, runMain } from '../lib/log';
import { Cell, printTable } from '../lib/table';
import { expectConverted, fill, FillPlan, NAMED_PENDING, stateCounts } from './old-record-fill';

const args = new Args(process.argv.slice(2));
const DELIVERIES = args.num('deliveries', 3_000_000, 30_000);
const USERS = args.num('users', 20_000, 2_000);
const CHECKS = args.num('checks', 2_000, 50);
const REPLAYS = args.num('replays', 5_000, 100);

/** What each conversion migration converts, counted before it runs (rows it will write). */
const CONVERTED: Record<string, { what: string; count: string }> = {
  BroadcastStreams1764130000000: {
    what: 'cursors made (subscriptions + users)',
    count: 'SELECT (SELECT count(*) FROM topic_subscriptions) + (SELECT count(*) FROM users) AS n',
  },
  ChecksOnReplicas1764140000000: {
    what: 'named by send checks, recorded as sent',
    count: NAMED_PENDING,
  },
  ExpireOpenDeliveries1764150000000: {
    what: 'open rows past their TTL expired',
    count: `SELECT count(*) AS n FROM deliveries WHERE status IN ('pending', 'sent') AND expires_at <= now()`,
  },
  RetentionPartitions1764160000000: {
    what: 'rows kept as history (no rewrite) + idempotency keys copied',
    count: `SELECT (SELECT count(*) FROM notifications) + (SELECT count(*) FROM deliveries)
                 + (SELECT count(*) FROM notifications WHERE idempotency_key IS NOT NULL) AS n`,
  },
};

async function count(db: TestDatabase, sql: string): Promise<number> {
  const [row] = await db.query<{ n: string | number }>(sql);
  return Number(row?.n ?? 0);
}

async function main(): Promise<void> {
  const db = await createTestDatabase('upgrade_bench');
  try {
    const plan: FillPlan = { deliveries: DELIVERIES, users: USERS, checks: CHECKS, replays: REPLAYS };
    progress(`database ${db.name}: the previous release's schema (${OLD_MIGRATIONS.length} migrations)`);
    await migrateThrough(db.url);
    const filled = await fill(db, plan);
    const before = await stateCounts(db);

    const rows: Cell[][] = [];
    let total = 0;
    for (let i = OLD_MIGRATIONS.length; i < MIGRATIONS.length; i++) {
      const name = MIGRATIONS[i]!.name;
      const converted = CONVERTED[name];
      const n = converted ? await count(db, converted.count) : 0;
      const dataSource = createDataSource(
        db.url,
        'bench-upgrade',
        { max: 2 },
        {
          migrations: MIGRATIONS.slice(0, i + 1),
          progress: {
            log: (line: { step?: string; done?: number; total?: number }) =>
              progress(`conversion progress: ${line.step} ${line.done}/${line.total}`),
          },
        },
      );
      await dataSource.initialize();
      try {
        const startedAt = process.hrtime.bigint();
        const applied = await runMigrations(dataSource);
        const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
        if (applied.join() !== name) throw new Error(`expected ${name} alone, applied ${applied.join(', ')}`);
        total += seconds;
        rows.push([name, converted?.what ?? '', String(n), seconds, n / seconds]);
        progress(`${name}: ${seconds.toFixed(2)} s`);
      } finally {
        await dataSource.destroy();
      }
    }
    rows.push([
      `conversion of ${DELIVERIES} delivery rows`,
      'deliveries in the database',
      String(filled.deliveries),
      total,
      filled.deliveries / total,
    ]);
    await expectConverted(db, before, filled);
    rows.push(...(await firstRetentionRun(db)));
    printTable(
      `Upgrade conversion: ${filled.deliveries} delivery rows, ${filled.notifications} notifications, ${USERS} users, ` +
        `${filled.sendChecks} send checks, ${filled.replayChecks} replay checks (kept for the sweep)`,
      ['migration', 'what it converts', 'rows', 'seconds', 'rows/s'],
      rows,
    );
    process.stdout.write(
      `\nfill: ${filled.seconds.toFixed(1)} s; the converted record checked (states, checks, no open row past its TTL)\n`,
    );
  } finally {
    await db.drop();
  }
}

/** The history batch size of RetentionService, and the retention the bench turns on (the fill spans 7 days). */
const HISTORY_BATCH = 5_000;
const BENCH_RETENTION_MS = 24 * 3_600_000;

/**
 * What the first replica's retention runs do to the converted database: the windows made at the default
 * retention (each attach reads the history once), then the history worked through in RetentionService's
 * batches with a retention of 24 h, so that most of the 7 days of fill (1-day TTLs) qualifies.
 */
async function firstRetentionRun(db: TestDatabase): Promise<Cell[][]> {
  const source = createDataSource(db.url, 'bench-retention', { max: 2 });
  await source.initialize();
  try {
    const retention = new RetentionRepository(source);
    const windows = windowsToMake(Date.now(), partitionWidthMs(168 * 3_600_000), null);
    let startedAt = process.hrtime.bigint();
    for (const w of windows) await retention.makePartition(w.suffix, w.startsAt, w.endsAt);
    const made = Number(process.hrtime.bigint() - startedAt) / 1e9;
    progress(`first retention run: ${windows.length} windows made in ${made.toFixed(2)} s`);
    const history = await count(db, 'SELECT count(*) AS n FROM notifications_history');
    startedAt = process.hrtime.bigint();
    let removed = 0;
    for (let n = HISTORY_BATCH; n === HISTORY_BATCH;) {
      n = await retention.purgeHistory(BENCH_RETENTION_MS, 0, HISTORY_BATCH);
      removed += n;
      progress(`conversion progress: history purged ${removed}/${history}`);
    }
    const purged = Number(process.hrtime.bigint() - startedAt) / 1e9;
    return [
      [
        'first retention run: windows made',
        `${windows.length} windows (12 h), the history read at each attach`,
        String(windows.length),
        made,
        windows.length / made,
      ],
      [
        'history emptied in batches (retention 24 h)',
        `notifications past TTL + 24 h with their rows, ${HISTORY_BATCH} a statement`,
        String(removed),
        purged,
        removed / purged,
      ],
    ];
  } finally {
    await source.destroy();
  }
}

runMain(main);
