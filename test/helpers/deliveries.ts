import { TestDatabase } from './database';
import { waitFor } from './wait';

/** What the tests read of one delivery row. */
export interface DeliveryRow {
  status: string;
  attempts: number;
}

export async function deliveryOf(
  db: TestDatabase,
  notificationId: string,
  userId: string,
): Promise<DeliveryRow | undefined> {
  const rows = await db.query<DeliveryRow>(
    'SELECT status, attempts FROM deliveries WHERE notification_id = $1 AND user_id = $2',
    [notificationId, userId],
  );
  return rows[0];
}

/**
 * Waits until a first send over a WebSocket is recorded: it leaves before it is (SEND_RECORD_DELAY_MS
 * later, or with its ack). Answers the delivery's status and attempts then.
 */
export async function waitRecorded(db: TestDatabase, notificationId: string, userId: string): Promise<DeliveryRow> {
  return waitFor(`the send of ${notificationId} to ${userId} to be recorded`, async () => {
    const delivery = await deliveryOf(db, notificationId, userId);
    return delivery && delivery.status !== 'pending' ? delivery : undefined;
  });
}

/** Waits until the delivery is parked: open, but no longer timed (its user is offline). */
export async function waitParked(
  db: TestDatabase,
  notificationId: string,
  userId: string,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(
    `delivery ${notificationId} to ${userId} to be parked`,
    async () =>
      (
        await db.query<{ parked: boolean }>(
          `SELECT next_attempt_at IS NULL AND status IN ('pending', 'sent') AS parked
             FROM deliveries WHERE notification_id = $1 AND user_id = $2`,
          [notificationId, userId],
        )
      )[0]?.parked,
    timeoutMs,
  );
}
