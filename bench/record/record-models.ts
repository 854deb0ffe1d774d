/**
 * The delivery record's micro-benchmark (issue 21, item 1; docs/adr/0007-delivery-record.md): PostgreSQL CPU
 * per delivery of topic broadcasts to --users subscribers, published and then acked `k` acks per user per
 * flush (500 users a statement), for two records on one private database each:
 *
 * - `rows`: today's record, a `deliveries` row per recipient, written and acked by Herald's own
 *   repositories and statements (NotificationRepository.create, DeliveryRepository.ackMany on the ack pool).
 * - `cursors`: model A of research/delivery-record-study.md: a stream per topic whose head gives gapless
 *   offsets under its row lock, one cursor per (user, stream) with a settled floor and a set above it, and
 *   an append-only ack journal (one row per notification per flush).
 * - `ack-rows`: model C of the study: the same streams, and one narrow row per ack (primary key only).
 *
 * The CPU is the backends' own, read from /proc/<pid>/stat (PostgreSQL on this machine), per phase.
 *
 *   node dist/bench/bench/record/record-models.js [--users 5000] [--broadcasts 20] [--k 1,3] [--reps 2] [--smoke]
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { ACK_SESSION_OPTIONS, createDataSource, runMigrations } from '../../apps/herald/src/database/data-source';
import { DeliveryRepository } from '../../apps/herald/src/record/delivery.repository';
import { NotificationRepository } from '../../apps/herald/src/record/notification.repository';
import { createTestDatabase, TestDatabase } from '../../test/helpers/database';
import { Args } from '../lib/args';
import { cpuMs } from '../lib/proc';
import { printTable } from '../lib/table';

const args = new Args(process.argv.slice(2));
const USERS = args.num('users', 5000, 600);
const BROADCASTS = args.num('broadcasts', 20, 3);
const KS = args.nums('k', [1, 3], [3]);
const REPS = args.num('reps', 2, 1);
const USERS_PER_STATEMENT = 500;
const TOPIC = 'bench';

type Model = 'rows' | 'cursors' | 'ack-rows';

interface Measured {
  model: Model;
  k: number;
  deliveries: number;
  publishUs: number;
  ackUs: number;
  rowsWritten: number;
}

const userIds = Array.from({ length: USERS }, (_, i) => `u${String(i).padStart(6, '0')}`);

/** CPU ms of the backends whose application_name is `name`. */
async function backendsCpu(db: TestDatabase, name: string): Promise<number> {
  const rows = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [name]);
  return rows.reduce((sum, r) => sum + cpuMs(r.pid), 0);
}

/** Acks of `k` notifications per user per flush, `USERS_PER_STATEMENT` users a flush: the flushes, in order. */
function flushes<T>(notifications: T[], k: number): { users: string[]; notifications: T[] }[] {
  const out: { users: string[]; notifications: T[] }[] = [];
  for (let first = 0; first < notifications.length; first += k) {
    const group = notifications.slice(first, first + k);
    for (let u = 0; u < USERS; u += USERS_PER_STATEMENT) {
      out.push({ users: userIds.slice(u, u + USERS_PER_STATEMENT), notifications: group });
    }
  }
  return out;
}

async function measureRows(k: number): Promise<Measured> {
  const db = await createTestDatabase('record_rows');
  let main: DataSource | undefined;
  let acks: DataSource | undefined;
  try {
    main = createDataSource(db.url, 'record-rows', { max: 2 });
    await main.initialize();
    await runMigrations(main);
    acks = createDataSource(db.url, 'record-rows-acks', { max: 1, sessionOptions: ACK_SESSION_OPTIONS });
    await acks.initialize();
    await db.query('INSERT INTO users (id) SELECT unnest($1::text[])', [userIds]);
    await db.query('INSERT INTO topic_subscriptions (user_id, topic) SELECT unnest($1::text[]), $2', [userIds, TOPIC]);
    const notifications = new NotificationRepository(main, 'rows');
    const deliveries = new DeliveryRepository(acks);
    // Warm the pools' plans outside the measurement.
    await deliveries.ackMany([{ notificationId: randomUUID(), userId: userIds[0]! }]);

    const before = await backendsCpu(db, 'record-rows');
    const ids: string[] = [];
    for (let b = 0; b < BROADCASTS; b++) {
      const created = await notifications.create(
        {
          id: randomUUID(),
          publisherId: 'pk_bench',
          idempotencyKey: null,
          requestHash: '',
          audience: { topic: TOPIC },
          event: 'bench',
          payload: { b },
          ttlSeconds: 3600,
        },
        new Date(Date.now() + 60_000),
      );
      ids.push(created.notification.id);
    }
    const published = await backendsCpu(db, 'record-rows');
    const ackBefore = await backendsCpu(db, 'record-rows-acks');
    for (const flush of flushes(ids, k)) {
      await deliveries.ackMany(
        flush.users.flatMap((userId) => flush.notifications.map((notificationId) => ({ notificationId, userId }))),
      );
    }
    const ackAfter = await backendsCpu(db, 'record-rows-acks');
    const [acked] = await db.query<{ n: string }>("SELECT count(*) AS n FROM deliveries WHERE status = 'acked'");
    const total = BROADCASTS * USERS;
    if (Number(acked!.n) !== total) throw new Error(`rows: ${acked!.n} of ${total} acked`);
    return {
      model: 'rows',
      k,
      deliveries: total,
      publishUs: ((published - before) * 1000) / total,
      ackUs: ((ackAfter - ackBefore) * 1000) / total,
      rowsWritten: BROADCASTS + total,
    };
  } finally {
    await acks?.destroy();
    await main?.destroy();
    await db.drop();
  }
}

const CURSOR_SCHEMA = `
  CREATE TABLE streams (id text PRIMARY KEY, head bigint NOT NULL DEFAULT 0);
  CREATE TABLE stream_notifications (
    id uuid PRIMARY KEY, stream_id text NOT NULL, stream_offset bigint NOT NULL, event text NOT NULL,
    payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
    recipients int NOT NULL, UNIQUE (stream_id, stream_offset));
  CREATE TABLE cursors (
    user_id text NOT NULL, stream_id text NOT NULL, from_offset bigint NOT NULL, until_offset bigint,
    settled_through bigint NOT NULL, settled_above bigint[] NOT NULL DEFAULT '{}',
    prev_through bigint NOT NULL DEFAULT 0, prev_above bigint[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (user_id, stream_id)) WITH (fillfactor = 70);
  CREATE TABLE broadcast_acks (notification_id uuid NOT NULL, acked_at timestamptz NOT NULL DEFAULT now(),
    user_ids text[] NOT NULL);
  CREATE INDEX ON broadcast_acks (notification_id);
  CREATE TABLE acks (notification_id uuid NOT NULL, user_id text NOT NULL,
    acked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (notification_id, user_id));`;

/** Model C's ack flush: a row per ack; a repeated ack changes nothing. */
const ROW_ACK = `
  INSERT INTO acks (notification_id, user_id)
  SELECT n.id, u.user_id FROM unnest($1::text[]) AS u(user_id), unnest($2::uuid[]) AS n(id)
  ON CONFLICT DO NOTHING`;

/** Model A's publish: the next offset under the head's lock (held to commit), the audience counted after it. */
const CURSOR_PUBLISH = `
  WITH h AS (UPDATE streams SET head = head + 1 WHERE id = $1 RETURNING head)
  INSERT INTO stream_notifications (id, stream_id, stream_offset, event, payload, expires_at, recipients)
  SELECT $2, $1, h.head, 'bench', $3, now() + interval '1 hour',
         (SELECT count(*) FROM cursors c WHERE c.stream_id = $1 AND c.from_offset < h.head
             AND (c.until_offset IS NULL OR c.until_offset >= h.head))
    FROM h RETURNING stream_offset`;

/**
 * Model A's ack flush (the study's v4): each cursor's floor moves over a contiguous range, or the range joins
 * the set above it; the journal gets, per notification, the users for whom the ack changed something.
 */
const CURSOR_ACK = `
  WITH i AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS i(user_id, lo, hi)),
  upd AS (
    UPDATE cursors c
       SET prev_through = c.settled_through, prev_above = c.settled_above,
           settled_through = CASE WHEN i.lo <= c.settled_through + 1 AND cardinality(c.settled_above) = 0
                                  THEN GREATEST(c.settled_through, i.hi) ELSE c.settled_through END,
           settled_above = CASE WHEN i.lo <= c.settled_through + 1 AND cardinality(c.settled_above) = 0
                                THEN c.settled_above
                                ELSE c.settled_above || ARRAY(SELECT generate_series(i.lo, i.hi)) END,
           updated_at = now()
      FROM i
     WHERE c.user_id = i.user_id AND c.stream_id = $4
    RETURNING c.user_id, c.prev_through, c.prev_above, i.lo, i.hi)
  INSERT INTO broadcast_acks (notification_id, user_ids)
  SELECT n.id, array_agg(u.user_id)
    FROM unnest($5::uuid[], $6::bigint[]) AS n(id, off)
    JOIN upd u ON n.off BETWEEN u.lo AND u.hi
   WHERE n.off > u.prev_through AND NOT n.off = ANY (u.prev_above)
   GROUP BY n.id`;

async function measureStreams(model: 'cursors' | 'ack-rows', k: number): Promise<Measured> {
  const db = await createTestDatabase(`record_${model.replace('-', '_')}`);
  const client = new Client({ connectionString: db.url, application_name: `record-${model}` });
  await client.connect();
  try {
    await client.query(CURSOR_SCHEMA);
    await client.query('SET synchronous_commit = off');
    await client.query('INSERT INTO streams (id) VALUES ($1)', [TOPIC]);
    await client.query(
      'INSERT INTO cursors (user_id, stream_id, from_offset, settled_through) SELECT unnest($1::text[]), $2, 0, 0',
      [userIds, TOPIC],
    );
    await client.query('VACUUM ANALYZE cursors');
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

    const before = cpuMs(pid);
    const published: { id: string; offset: number }[] = [];
    for (let b = 0; b < BROADCASTS; b++) {
      const id = randomUUID();
      // Publishes keep synchronous commits (a 202 means committed): only this statement's session differs.
      await client.query('BEGIN');
      await client.query('SET LOCAL synchronous_commit = on');
      const { rows } = await client.query<{ stream_offset: string }>({
        name: 'publish',
        text: CURSOR_PUBLISH,
        values: [TOPIC, id, JSON.stringify({ b })],
      });
      await client.query('COMMIT');
      published.push({ id, offset: Number(rows[0]!.stream_offset) });
    }
    const afterPublish = cpuMs(pid);
    for (const flush of flushes(published, k)) {
      if (model === 'ack-rows') {
        await client.query({ name: 'ack', text: ROW_ACK, values: [flush.users, flush.notifications.map((n) => n.id)] });
        continue;
      }
      const lo = flush.notifications[0]!.offset;
      const hi = flush.notifications[flush.notifications.length - 1]!.offset;
      await client.query({
        name: 'ack',
        text: CURSOR_ACK,
        values: [
          flush.users,
          flush.users.map(() => lo),
          flush.users.map(() => hi),
          TOPIC,
          flush.notifications.map((n) => n.id),
          flush.notifications.map((n) => n.offset),
        ],
      });
    }
    const afterAcks = cpuMs(pid);
    const total = BROADCASTS * USERS;
    let inserted: number;
    if (model === 'ack-rows') {
      const acked = await client.query<{ n: string }>('SELECT count(*) AS n FROM acks');
      if (Number(acked.rows[0]!.n) !== total) throw new Error(`ack rows: ${acked.rows[0]!.n} of ${total}`);
      inserted = total;
    } else {
      const settled = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM cursors WHERE settled_through = $1 AND cardinality(settled_above) = 0',
        [published[published.length - 1]!.offset],
      );
      if (Number(settled.rows[0]!.n) !== USERS) throw new Error(`cursors: ${settled.rows[0]!.n} of ${USERS} settled`);
      const journal = await client.query<{ n: string; acks: string }>(
        'SELECT count(*) AS n, sum(cardinality(user_ids)) AS acks FROM broadcast_acks',
      );
      if (Number(journal.rows[0]!.acks) !== total) throw new Error(`journal: ${journal.rows[0]!.acks} of ${total}`);
      inserted = Number(journal.rows[0]!.n);
    }
    return {
      model,
      k,
      deliveries: total,
      publishUs: ((afterPublish - before) * 1000) / total,
      ackUs: ((afterAcks - afterPublish) * 1000) / total,
      rowsWritten: BROADCASTS + inserted,
    };
  } finally {
    await client.end().catch(() => undefined);
    await db.drop();
  }
}

async function main(): Promise<void> {
  const results: Measured[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    for (const k of KS) {
      // Alternated, so a slower moment of the machine falls on both.
      for (const model of ['rows', 'cursors', 'ack-rows'] as const) {
        const result = model === 'rows' ? await measureRows(k) : await measureStreams(model, k);
        results.push(result);
        process.stdout.write(
          `rep ${rep} ${result.model} k=${k}: publish ${result.publishUs.toFixed(2)} µs, ack ${result.ackUs.toFixed(2)} µs per delivery\n`,
        );
      }
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const rows: (string | number)[][] = [];
  for (const k of KS) {
    for (const model of ['rows', 'cursors', 'ack-rows'] as const) {
      const mine = results.filter((r) => r.model === model && r.k === k);
      const publish = median(mine.map((r) => r.publishUs));
      const ack = median(mine.map((r) => r.ackUs));
      rows.push([model, k, publish, ack, publish + ack, mine[0]!.rowsWritten]);
    }
  }
  printTable(
    `PostgreSQL CPU µs per delivery, ${BROADCASTS} broadcasts to ${USERS} users, median of ${REPS}`,
    ['record', 'acks per user per flush', 'publish', 'ack', 'total', 'rows inserted'],
    rows,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
