import type { TestDatabase } from '../../test/helpers/database';
import { progress } from '../lib/log';

/** How big a previous release's database the upgrade bench fills (see upgrade.ts for the mix). */
export interface FillPlan {
  deliveries: number;
  users: number;
  checks: number;
  replays: number;
}

export interface Filled {
  deliveries: number;
  notifications: number;
  sendChecks: number;
  replayChecks: number;
  /** Pending deliveries of unexpired notifications that the send checks name: what the conversion records as sent. */
  named: number;
  seconds: number;
}

const TOPICS = 10;
const TTL = '1 day';
/**
 * When a notification was published: in the last 7 days, a seventh of them live, none within an hour of its
 * TTL (so no state moves by itself while the bench runs and its check of the converted record holds).
 */
const PUBLISHED_AT = `now() - CASE WHEN random() < 1.0 / 7 THEN random() * interval '23 hours'
                                   ELSE interval '25 hours' + random() * interval '143 hours' END`;

/** A user id by number, as the fill names users. */
const USER = (n: string) => `'u' || lpad((${n})::text, 7, '0')`;

/** Deliveries rows of the notifications with seq in [$1, $2]: one per recipient, its state drawn from a hash. */
const DELIVERIES_OF_SEQS = `
  INSERT INTO deliveries (notification_id, user_id, seq, status, attempts, expires_at, next_attempt_at,
                          first_sent_at, last_sent_at, acked_at, created_at, updated_at)
  SELECT n.id, r.user_id, n.seq, s.status,
         CASE s.status WHEN 'pending' THEN 0 WHEN 'failed' THEN 5 WHEN 'sent' THEN 1 + h.r % 3 ELSE 1 END,
         n.expires_at,
         -- A third of the sent rows wait for their next check; the rest are parked (their user offline).
         CASE WHEN s.status = 'sent' AND h.r % 3 = 0 THEN n.created_at + interval '30 seconds' END,
         CASE WHEN s.status IN ('sent', 'acked', 'failed') THEN n.created_at + interval '1 second' END,
         CASE WHEN s.status IN ('sent', 'acked', 'failed') THEN n.created_at + interval '1 second' END,
         CASE WHEN s.status = 'acked' THEN n.created_at + interval '2 seconds' END,
         n.created_at, n.created_at
    FROM notifications n
         CROSS JOIN LATERAL (
           SELECT jsonb_array_elements_text(n.audience -> 'users') AS user_id WHERE n.audience ? 'users'
           UNION ALL
           SELECT t.user_id FROM topic_subscriptions t WHERE n.topic IS NOT NULL AND t.topic = n.topic
           UNION ALL
           SELECT u.id FROM users u WHERE n.audience ? 'all') r
         CROSS JOIN LATERAL (SELECT abs(hashtext(n.seq::text || r.user_id)) % 1000 AS r) h
         CROSS JOIN LATERAL (
           SELECT CASE WHEN n.expires_at <= now() THEN
                         CASE WHEN h.r < 850 THEN 'acked' WHEN h.r < 950 THEN 'expired' WHEN h.r < 980 THEN 'failed'
                              WHEN h.r < 990 THEN 'pending' ELSE 'sent' END
                       ELSE
                         CASE WHEN h.r < 600 THEN 'acked' WHEN h.r < 720 THEN 'sent' WHEN h.r < 970 THEN 'pending'
                              ELSE 'failed' END
                  END AS status) s
   WHERE n.seq BETWEEN $1 AND $2`;

/** The pending, unexpired deliveries the send checks name: what ChecksOnReplicas records as sent. */
export const NAMED_PENDING = `
  SELECT count(*) AS n
    FROM (SELECT DISTINCT c.notification_id, u.user_id FROM send_checks c, unnest(c.user_ids) AS u(user_id)) x
    JOIN deliveries d ON d.notification_id = x.notification_id AND d.user_id = x.user_id
   WHERE d.status = 'pending' AND d.expires_at > now()`;

async function count(db: TestDatabase, sql: string): Promise<number> {
  const [row] = await db.query<{ n: string | number }>(sql);
  return Number(row?.n ?? 0);
}

/** Fills a database at the previous release's schema; progress on stderr. */
export async function fill(db: TestDatabase, plan: FillPlan): Promise<Filled> {
  const startedAt = Date.now();
  const users = plan.users - (plan.users % TOPICS);
  const perTopic = (2 * users) / TOPICS;
  const direct = Math.round((0.4 * plan.deliveries) / 3);
  const topical = Math.max(1, Math.round((0.4 * plan.deliveries) / perTopic));
  const everyone = Math.max(1, Math.round((0.2 * plan.deliveries) / users));
  await db.query(`INSERT INTO users (id) SELECT ${USER('g')} FROM generate_series(0, $1 - 1) g`, [users]);
  await db.query(
    `INSERT INTO topic_subscriptions (user_id, topic)
     SELECT ${USER('g')}, 't' || ((g + k) % ${TOPICS}) FROM generate_series(0, $1 - 1) g, (VALUES (0), (3)) AS o(k)`,
    [users],
  );
  // In publish order (seq follows created_at), over the last 7 days.
  await db.query(
    `INSERT INTO notifications (id, publisher_id, request_hash, audience, topic, event, payload, ttl_seconds,
                                recipients, created_at, expires_at)
     SELECT gen_random_uuid(), 'pk_bench', 'bench', audience, topic, event, '{"bench":true}', 86400, recipients,
            created_at, created_at + interval '${TTL}'
       FROM (SELECT jsonb_build_object('users', jsonb_build_array(${USER('(3 * g::bigint * 7919) % $4')},
                                                                 ${USER('((3 * g::bigint + 1) * 7919) % $4')},
                                                                 ${USER('((3 * g::bigint + 2) * 7919) % $4')})) AS audience,
                    NULL::text AS topic, 'direct' AS event, 3 AS recipients, ${PUBLISHED_AT} AS created_at
               FROM generate_series(1, $1) g
             UNION ALL
             SELECT jsonb_build_object('topic', 't' || g % ${TOPICS}), 't' || g % ${TOPICS}, 'topic', $5,
                    ${PUBLISHED_AT}
               FROM generate_series(1, $2) g
             UNION ALL
             SELECT '{"all": true}', NULL, 'everyone', $4, ${PUBLISHED_AT}
               FROM generate_series(1, $3) g) x
      ORDER BY created_at`,
    [direct, topical, everyone, users, perTopic],
  );
  const notifications = direct + topical + everyone;
  progress(
    `fill: ${users} users, ${notifications} notifications (${direct} user lists, ${topical} topic, ${everyone} everyone)`,
  );

  // Deliveries, about 250 000 a statement.
  const step = Math.max(1, Math.floor((notifications * 250_000) / plan.deliveries));
  let deliveries = 0;
  for (let first = 1; first <= notifications; first += step) {
    const [row] = await db.query<{ n: number }>(
      `WITH made AS (${DELIVERIES_OF_SEQS} RETURNING 1) SELECT count(*)::int AS n FROM made`,
      [first, first + step - 1],
    );
    deliveries += row?.n ?? 0;
    const share = ((100 * deliveries) / plan.deliveries).toFixed(0);
    progress(`fill: ${deliveries} delivery rows (${share}%), ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  }

  // Send records of live broadcasts, 100 pending users each, as a previous replica wrote them.
  await db.query(
    `INSERT INTO send_checks (notification_id, user_ids, sent_at, check_at)
     SELECT notification_id, array_agg(user_id ORDER BY user_id), now() - interval '20 seconds',
            now() - interval '5 seconds'
       FROM (SELECT d.notification_id, d.user_id,
                    row_number() OVER (PARTITION BY d.notification_id ORDER BY d.user_id) AS k
               FROM deliveries d JOIN notifications n ON n.id = d.notification_id
              WHERE d.status = 'pending' AND n.expires_at > now() AND NOT n.audience ? 'users') x
      GROUP BY notification_id, (k - 1) / 100
      ORDER BY notification_id, (k - 1) / 100
      LIMIT $1`,
    [plan.checks],
  );
  const named = await count(db, NAMED_PENDING);
  // Replay batches of recent seqs, sent 10 s ago, not checked yet.
  await db.query(
    `INSERT INTO replay_checks (user_id, after_seq, through_seq, sent_at, check_at)
     SELECT ${USER('(g * 37) % $2')}, m.s - 20000 + (g * 37) % 15000, m.s - 19500 + (g * 37) % 15000,
            now() - interval '10 seconds', now() - interval '5 seconds'
       FROM generate_series(1, $1) g, (SELECT max(seq) AS s FROM notifications) m`,
    [plan.replays, users],
  );
  progress('fill: VACUUM ANALYZE (autovacuum would have, on a database in use)');
  await db.query('VACUUM ANALYZE');
  const filled: Filled = {
    deliveries,
    notifications,
    sendChecks: await count(db, 'SELECT count(*) AS n FROM send_checks'),
    replayChecks: await count(db, 'SELECT count(*) AS n FROM replay_checks'),
    named,
    seconds: (Date.now() - startedAt) / 1000,
  };
  progress(`fill: done in ${filled.seconds.toFixed(1)} s`);
  return filled;
}

export type StateCounts = Record<
  'pending' | 'sent' | 'acked' | 'expired' | 'failed' | 'stalePending' | 'staleSent',
  number
>;

/** Deliveries by state, and the open ones past their TTL (what the conversion ends). */
export async function stateCounts(db: TestDatabase): Promise<StateCounts> {
  const [row] = await db.query<StateCounts>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'sent')::int AS sent,
            count(*) FILTER (WHERE status = 'acked')::int AS acked,
            count(*) FILTER (WHERE status = 'expired')::int AS expired,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'pending' AND expires_at <= now())::int AS "stalePending",
            count(*) FILTER (WHERE status = 'sent' AND expires_at <= now())::int AS "staleSent"
       FROM deliveries`,
  );
  return row!;
}

/**
 * Throws unless the converted record holds what the conversion should make of `before`: every row kept, the
 * open rows past their TTL expired, the pending rows the send checks named recorded as sent, acked and
 * failed untouched, no send check left, every user and subscription with its cursor.
 */
export async function expectConverted(db: TestDatabase, before: StateCounts, filled: Filled): Promise<void> {
  const after = await stateCounts(db);
  const expected: StateCounts = {
    pending: before.pending - before.stalePending - filled.named,
    sent: before.sent - before.staleSent + filled.named,
    acked: before.acked,
    expired: before.expired + before.stalePending + before.staleSent,
    failed: before.failed,
    stalePending: 0,
    staleSent: 0,
  };
  const problems: string[] = [];
  for (const key of Object.keys(expected) as (keyof StateCounts)[]) {
    if (after[key] !== expected[key]) problems.push(`${key}: ${after[key]}, expected ${expected[key]}`);
  }
  if ((await count(db, `SELECT count(*) AS n FROM pg_tables WHERE tablename = 'send_checks'`)) !== 0) {
    problems.push('send_checks is still there');
  }
  const cursors = await count(db, 'SELECT count(*) AS n FROM cursors');
  const members = await count(
    db,
    'SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM topic_subscriptions) AS n',
  );
  if (cursors !== members) problems.push(`cursors: ${cursors}, expected ${members}`);
  if (problems.length > 0) throw new Error(`the conversion is not what it should be: ${problems.join('; ')}`);
}
