import type { AdminNotificationSummary, AdminStats, Audience, DeliveryStatus } from '@herald/protocol';
import { DataSource } from 'typeorm';
import { query } from './sql';

export interface NotificationFilter {
  event?: string;
  userId?: string;
  status?: DeliveryStatus;
  from?: Date;
  to?: Date;
  /** Only notifications with a seq below this (the next page, newest first). */
  beforeSeq?: number;
  limit: number;
}

const ZERO: Record<DeliveryStatus, number> = { pending: 0, sent: 0, acked: 0, expired: 0, failed: 0 };

function counts(raw: Record<string, number> | null): Record<DeliveryStatus, number> {
  return { ...ZERO, ...(raw ?? {}) };
}

/** The console's reads: history with filters, delivery counts, audience sizes, user facts, statistics. */
export class AdminRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** How many users an audience reaches now (what a publish would store). */
  async audienceSize(audience: Audience): Promise<number> {
    if ('users' in audience) return new Set(audience.users).size;
    const rows =
      'topic' in audience
        ? await query<{ n: number }>(
            this.dataSource,
            'SELECT count(*)::int AS n FROM topic_subscriptions WHERE topic = $1',
            [audience.topic],
          )
        : await query<{ n: number }>(this.dataSource, 'SELECT count(*)::int AS n FROM users');
    return rows[0]?.n ?? 0;
  }

  /** When the oldest notification kept was published (retention removed what is older), or null. */
  async oldestNotification(): Promise<Date | null> {
    const [row] = await query<{ at: Date | null }>(this.dataSource, `SELECT min(created_at) AS at FROM notifications`);
    return row?.at ?? null;
  }

  /** Newest first, with the delivery counts of each. */
  async listNotifications(filter: NotificationFilter): Promise<AdminNotificationSummary[]> {
    const rows = await query<{
      id: string;
      seq: string;
      event: string;
      publisher_id: string;
      audience: Audience;
      topic: string | null;
      created_at: Date;
      expires_at: Date;
      recipients: number;
      counts: Record<string, number> | null;
    }>(
      this.dataSource,
      `SELECT n.id, n.seq, n.event, n.publisher_id, n.audience, n.topic, n.created_at, n.expires_at, n.recipients,
              herald_counts(n.id, n.stream_id, n.recipients, n.expires_at) AS counts
         FROM notifications n
        WHERE ($1::text IS NULL OR n.event = $1)
          -- User and status together mean that user's delivery in that state.
          AND ($2::text IS NULL AND $3::text IS NULL
               OR EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.notification_id = n.id
                             AND ($2::text IS NULL OR d.user_id = $2)
                             AND ($3::text IS NULL OR d.status = $3)))
          AND ($4::timestamptz IS NULL OR n.created_at >= $4)
          AND ($5::timestamptz IS NULL OR n.created_at < $5)
          AND ($6::bigint IS NULL OR n.seq < $6)
        ORDER BY n.seq DESC
        LIMIT $7`,
      [
        filter.event ?? null,
        filter.userId ?? null,
        filter.status ?? null,
        filter.from ?? null,
        filter.to ?? null,
        filter.beforeSeq ?? null,
        filter.limit,
      ],
    );
    return rows.map((r) => ({
      id: r.id,
      seq: Number(r.seq),
      event: r.event,
      publisherId: r.publisher_id,
      audience: r.audience,
      topic: r.topic,
      createdAt: r.created_at.toISOString(),
      expiresAt: r.expires_at.toISOString(),
      recipients: r.recipients,
      counts: counts(r.counts),
    }));
  }

  /** Delivery counts and recipients of several notifications at once (live progress). */
  async progressOf(
    ids: string[],
  ): Promise<{ id: string; recipients: number; counts: Record<DeliveryStatus, number>; at: string }[]> {
    if (ids.length === 0) return [];
    const rows = await query<{ id: string; recipients: number; counts: Record<string, number> | null; at: Date }>(
      this.dataSource,
      `SELECT n.id, n.recipients, clock_timestamp() AS at,
              herald_counts(n.id, n.stream_id, n.recipients, n.expires_at) AS counts
         FROM notifications n WHERE n.id = ANY($1::uuid[])`,
      [ids],
    );
    return rows.map((r) => ({ id: r.id, recipients: r.recipients, counts: counts(r.counts), at: r.at.toISOString() }));
  }

  /** Each user's topics and latest ack. */
  async userFacts(userIds: string[]): Promise<Map<string, { topics: string[]; lastAckAt: string | null }>> {
    const facts = new Map<string, { topics: string[]; lastAckAt: string | null }>();
    if (userIds.length === 0) return facts;
    const rows = await query<{ user_id: string; topics: string[] | null; last_ack_at: Date | null }>(
      this.dataSource,
      `SELECT u.user_id,
              (SELECT array_agg(t.topic ORDER BY t.topic) FROM topic_subscriptions t WHERE t.user_id = u.user_id) AS topics,
              (SELECT max(d.acked_at) FROM deliveries d WHERE d.user_id = u.user_id AND d.status = 'acked') AS last_ack_at
         FROM unnest($1::text[]) AS u(user_id)`,
      [userIds],
    );
    for (const r of rows) {
      facts.set(r.user_id, { topics: r.topics ?? [], lastAckAt: r.last_ack_at?.toISOString() ?? null });
    }
    return facts;
  }

  /** The store's half of the overview (connections come from presence). */
  async stats(): Promise<Omit<AdminStats, 'at' | 'connections'>> {
    const [perMinute, latency, resends] = await Promise.all([
      query<{ minute: Date; count: number }>(
        this.dataSource,
        `SELECT m.minute, count(n.id)::int AS count
           FROM generate_series(date_trunc('minute', now()) - interval '29 minutes', date_trunc('minute', now()),
                                interval '1 minute') AS m(minute)
           LEFT JOIN notifications n
             ON n.created_at >= m.minute AND n.created_at < m.minute + interval '1 minute'
          GROUP BY m.minute
          ORDER BY m.minute`,
      ),
      query<{ p50: number | null; p95: number | null; samples: number }>(
        this.dataSource,
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
                count(*)::int AS samples
           FROM (SELECT extract(epoch FROM d.acked_at - n.created_at) * 1000 AS ms
                   FROM notifications n JOIN deliveries d ON d.notification_id = n.id
                  WHERE n.created_at > now() - interval '5 minutes' AND d.status = 'acked') AS a`,
      ),
      query<{ redeliveries: number; failures: number }>(
        this.dataSource,
        `SELECT coalesce(sum(greatest(d.attempts - 1, 0)), 0)::int AS redeliveries,
                count(*) FILTER (WHERE d.status = 'failed')::int AS failures
           FROM notifications n JOIN deliveries d ON d.notification_id = n.id
          WHERE n.created_at > now() - interval '1 hour'`,
      ),
    ]);
    return {
      notificationsPerMinute: perMinute.map((r) => ({ minute: r.minute.toISOString(), count: r.count })),
      ackLatencyMs: {
        p50: latency[0]?.p50 === null || latency[0]?.p50 === undefined ? null : Math.round(latency[0].p50),
        p95: latency[0]?.p95 === null || latency[0]?.p95 === undefined ? null : Math.round(latency[0].p95),
        samples: latency[0]?.samples ?? 0,
      },
      redeliveriesLastHour: resends[0]?.redeliveries ?? 0,
      failuresLastHour: resends[0]?.failures ?? 0,
    };
  }
}
