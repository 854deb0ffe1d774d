import type { TestDatabase } from './database';

/** One notification that got a 202, for one recipient. */
export interface Published {
  id: string;
  userId: string;
}

/** The end states a test accepts besides `acked` (for example `expired` for a short TTL). */
export type EndState = 'acked' | 'expired' | 'failed';

export interface LossReport {
  published: number;
  acked: number;
  expired: number;
  failed: number;
}

/**
 * The loss check of docs/reliability.md: every notification that got a 202 is,
 * at the end, either acked in PostgreSQL and seen exactly once by its
 * recipient's client after dedup by id, or in one of the end states the test
 * allows. `received` maps a user to every notification id the client was
 * handed (duplicates included: dedup happens here, as a client would do it).
 * Throws with every broken case listed; returns the counts for the test's log.
 */
export async function assertNothingLost(
  db: TestDatabase,
  published: Published[],
  received: Map<string, string[]>,
  allowed: EndState[] = ['acked'],
): Promise<LossReport> {
  const report: LossReport = { published: published.length, acked: 0, expired: 0, failed: 0 };
  if (published.length === 0) throw new Error('the loss check needs at least one published notification');
  const rows = await db.query<{ notification_id: string; user_id: string; status: string }>(
    `SELECT notification_id::text, user_id, status FROM deliveries
      WHERE notification_id = ANY($1::uuid[])`,
    [[...new Set(published.map((p) => p.id))]],
  );
  const status = new Map(rows.map((r) => [`${r.notification_id}/${r.user_id}`, r.status]));
  const seen = new Map<string, Set<string>>();
  for (const [userId, ids] of received) seen.set(userId, new Set(ids));
  const problems: string[] = [];
  for (const { id, userId } of published) {
    const state = status.get(`${id}/${userId}`);
    const inClient = seen.get(userId)?.has(id) ?? false;
    if (state === undefined) {
      problems.push(`${id} → ${userId}: no delivery row (a 202 that was not durable)`);
    } else if (state === 'acked') {
      if (!inClient) problems.push(`${id} → ${userId}: acked in PostgreSQL but never reached the client`);
      else report.acked += 1;
    } else if ((state === 'expired' || state === 'failed') && allowed.includes(state)) {
      report[state] += 1;
    } else {
      problems.push(
        `${id} → ${userId}: ends ${state}${inClient ? ' (the client has it, its ack is not recorded)' : ''}`,
      );
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `loss check failed for ${problems.length} of ${published.length}:\n${problems.slice(0, 20).join('\n')}`,
    );
  }
  return report;
}
