import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { createDataSource, MIGRATIONS, runMigrations } from '../../apps/herald/src/database/data-source';
import type { TestDatabase } from './database';
import { repoRoot } from './paths';
import { replicaEnv, TEST_API_KEY } from './replica';

/**
 * The record as the previous release (before the stream record, issue 21) kept it: its schema is the
 * migrations up to `1764120000000-SendChecks`, and a delivery is a row per recipient in one of five
 * states, with `send_checks` and `replay_checks` naming sends not yet recorded on their rows.
 */
export const OLD_SCHEMA = 'SendChecks1764120000000';

/** The previous release's migrations. */
export const OLD_MIGRATIONS = MIGRATIONS.slice(0, MIGRATIONS.findIndex((m) => m.name === OLD_SCHEMA) + 1);

/** Applies `migrations` (the previous release's unless told) to the database at `url`; returns their names. */
export async function migrateThrough(
  url: string,
  migrations: typeof OLD_MIGRATIONS = OLD_MIGRATIONS,
): Promise<string[]> {
  const dataSource = createDataSource(url, 'herald-test-migrate', { max: 2 }, { migrations });
  await dataSource.initialize();
  try {
    return await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

export type OldStatus = 'pending' | 'sent' | 'acked' | 'expired' | 'failed';

export interface OldDelivery {
  userId: string;
  status: OldStatus;
  /** Sends recorded on the row (0 for pending, 1 otherwise, unless told). */
  attempts?: number;
  /** An open row's next check, as the previous release set it; null (the default): parked, its user offline. */
  nextAttemptAt?: Date | null;
}

export interface OldNotification {
  deliveries: OldDelivery[];
  /** A topic broadcast (its recipients subscribed), else a user list. */
  topic?: string;
  event?: string;
  ttlSeconds?: number;
  /** Published this long ago (0 unless told); past its TTL, the notification has expired. */
  ageSeconds?: number;
}

/**
 * Writes a notification and its deliveries rows as the previous release did (publisher: the tests' key;
 * every recipient a known user, a topic's recipients subscribed to it). Answers its id and seq.
 */
export async function insertOldNotification(
  db: TestDatabase,
  spec: OldNotification,
): Promise<{ id: string; seq: number }> {
  const id = randomUUID();
  const ttl = spec.ttlSeconds ?? 3600;
  const age = spec.ageSeconds ?? 0;
  const userIds = spec.deliveries.map((d) => d.userId);
  const audience = spec.topic !== undefined ? { topic: spec.topic } : { users: userIds };
  const [row] = await db.query<{ seq: string }>(
    `INSERT INTO notifications (id, publisher_id, request_hash, audience, topic, event, payload, ttl_seconds,
                                recipients, created_at, expires_at)
     VALUES ($1, $2, 'old-release', $3, $4, $5, $6, $7::int, $8, now() - $9::int * interval '1 second',
             now() + ($7::int - $9::int) * interval '1 second')
     RETURNING seq`,
    [
      id,
      publisherKeyId(TEST_API_KEY),
      JSON.stringify(audience),
      spec.topic ?? null,
      spec.event ?? 'old.event',
      JSON.stringify({ from: 'previous release' }),
      ttl,
      userIds.length,
      age,
    ],
  );
  await db.query('INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [userIds]);
  if (spec.topic !== undefined) {
    await db.query(
      'INSERT INTO topic_subscriptions (user_id, topic) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING',
      [userIds, spec.topic],
    );
  }
  const seq = Number(row!.seq);
  await db.query(
    `INSERT INTO deliveries (notification_id, user_id, seq, status, attempts, expires_at, next_attempt_at,
                             first_sent_at, last_sent_at, acked_at, created_at, updated_at)
     SELECT $1, d.user_id, $2, d.status, d.attempts, n.expires_at, d.next_attempt_at,
            CASE WHEN d.attempts > 0 THEN n.created_at END, CASE WHEN d.attempts > 0 THEN n.created_at END,
            CASE WHEN d.status = 'acked' THEN n.created_at END, n.created_at, n.created_at
       FROM unnest($3::text[], $4::text[], $5::int[], $6::timestamptz[])
              AS d(user_id, status, attempts, next_attempt_at),
            notifications n
      WHERE n.id = $1`,
    [
      id,
      seq,
      userIds,
      spec.deliveries.map((d) => d.status),
      spec.deliveries.map((d) => d.attempts ?? (d.status === 'pending' ? 0 : 1)),
      spec.deliveries.map((d) => d.nextAttemptAt ?? null),
    ],
  );
  return { id, seq };
}

/** A broadcast's send to `userIds` recorded once, as the previous release's replica did, unsettled. */
export async function insertSendCheck(
  db: TestDatabase,
  notificationId: string,
  userIds: string[],
  sentAt: Date,
  checkAt: Date,
): Promise<void> {
  await db.query('INSERT INTO send_checks (notification_id, user_ids, sent_at, check_at) VALUES ($1, $2, $3, $4)', [
    notificationId,
    userIds,
    sentAt,
    checkAt,
  ]);
}

/** A replay batch's send (seq in (afterSeq, throughSeq]) recorded once, as the previous release did, unsettled. */
export async function insertReplayCheck(
  db: TestDatabase,
  userId: string,
  afterSeq: number,
  throughSeq: number,
  sentAt: Date,
  checkAt: Date,
): Promise<void> {
  await db.query(
    'INSERT INTO replay_checks (user_id, after_seq, through_seq, sent_at, check_at) VALUES ($1, $2, $3, $4, $5)',
    [userId, afterSeq, throughSeq, sentAt, checkAt],
  );
}

/** One JSON log line of the service. */
export type LogLine = Record<string, unknown> & { message?: unknown };

/**
 * `npm run migrate` (the built `dist/apps/herald/database/migrate.js`) against the database at `url` with
 * the test replicas' environment and `env` on top: its exit code and JSON log lines.
 */
export async function runMigrateCli(
  url: string,
  redisPrefix: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; lines: LogLine[]; output: string }> {
  const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'apps', 'herald', 'database', 'migrate.js')], {
    env: { PATH: process.env.PATH ?? '', ...replicaEnv({ databaseUrl: url, redisPrefix, LOG_LEVEL: 'log', ...env }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
  return { code, lines, output };
}
