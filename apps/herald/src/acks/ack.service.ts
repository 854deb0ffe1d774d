import { Injectable, Logger } from '@nestjs/common';
import {
  ErrorCode,
  type AckOutcome,
  type AckStatus,
  type ClientAckFrame,
  type ClientAcksFrame,
  type ErrorFrame,
  type ServerFrame,
} from '@herald/protocol';
import type { Connection } from '../connections/connection';
import { DeliveryService } from '../delivery/delivery.service';
import { LiveEvents } from '../delivery/live-events';
import { isNotificationId } from '../gateway/frame-parser';
import { MetricsService } from '../metrics/metrics.service';
import { DeliveryRepository } from '../record/delivery.repository';
import { RedeliveryScheduler } from '../redelivery/redelivery.scheduler';
import { WebhookEvents } from '../webhooks/webhook-events';
import { AckWriter } from './ack-writer';

export type AckResult = { ok: true; status: AckStatus } | { ok: false };

/**
 * Where an ack is handled: the `ack` and `acks` frames of a connection (by id, or `through` what the
 * connection was sent), answered on it, and `POST /v1/acks`. Each ack joins the replica's ack batch
 * (AckWriter); one that closes its delivery cancels the delivery's check and its waiting sent-mark.
 */
@Injectable()
export class AckService {
  private readonly logger = new Logger(AckService.name);

  constructor(
    private readonly writer: AckWriter,
    private readonly delivery: DeliveryService,
    private readonly scheduler: RedeliveryScheduler,
    private readonly deliveries: DeliveryRepository,
    private readonly metrics: MetricsService,
    private readonly live: LiveEvents,
    private readonly webhooks: WebhookEvents,
  ) {}

  /**
   * `{type:"ack", id}`: answered by an `ack` frame with the outcome (with `quiet`, only a failure is answered);
   * with `through`, see `ackThrough`.
   */
  async ack(connection: Connection, frame: ClientAckFrame): Promise<void> {
    if (frame.through) {
      await this.ackThrough(connection, frame.id, frame.quiet === true);
      return;
    }
    const result = await this.record(connection.userId, frame.id, isNotificationId(frame.id));
    if (result.ok) {
      connection.settled(frame.id);
      if (!frame.quiet) connection.send({ type: 'ack', id: frame.id, status: result.status });
    } else connection.send(noSuchNotification(frame.id));
  }

  /**
   * `{type:"acks", ids}`: answered by one `acks` frame, and an error naming the ids that were not recorded.
   * With `quiet`, no `acks` frame: the ids that are not this user's notifications are named in one error.
   */
  async acks(connection: Connection, frame: ClientAcksFrame): Promise<void> {
    // Each id joins the replica's ack batch in this tick: one frame of acks is a few statements at most.
    const outcomes = await this.ackAll(connection.userId, frame.ids, isNotificationId);
    const results: { id: string; status: AckOutcome }[] = [];
    const forbidden: string[] = [];
    const failed: string[] = [];
    frame.ids.forEach((id, i) => {
      const status = outcomes[i];
      if (status) results.push({ id, status });
      else failed.push(id);
      if (status === 'forbidden') forbidden.push(id);
      else if (status) connection.settled(id);
    });
    if (!frame.quiet) {
      if (results.length > 0) connection.send({ type: 'acks', results });
    } else if (forbidden.length > 0) {
      connection.send({ type: 'error', code: ErrorCode.Forbidden, message: NO_SUCH_NOTIFICATIONS, ids: forbidden });
    }
    // Only these were not recorded (their batch failed): named to send again, quiet or not.
    if (failed.length > 0) this.acksFailed(connection, failed);
  }

  /**
   * Many acks at once (an `acks` frame, a `POST /v1/acks`): they join the replica's ack batch together.
   * `ids` come normalised (UUIDs in lower case); `isValidId` tells which are notification ids at all. Each
   * answer is the ack's outcome (`forbidden` for an id that is not one of this user's notifications), or
   * null where its write failed.
   */
  async ackAll(userId: string, ids: string[], isValidId: (id: string) => boolean): Promise<(AckOutcome | null)[]> {
    const settled = await Promise.allSettled(ids.map((id) => this.record(userId, id, isValidId(id))));
    return settled.map((s) => (s.status === 'rejected' ? null : s.value.ok ? s.value.status : 'forbidden'));
  }

  /** One ack, written in the replica's batch; a delivery it closes is taken off the live side's books. */
  private async record(userId: string, notificationId: string, isValidId: boolean): Promise<AckResult> {
    if (!isValidId) return { ok: false };
    const { outcome, changed, sincePublishMs, sinceSentMs } = await this.writer.add({ notificationId, userId });
    // Closed now (acked here or before, or expired): a send of it waiting for its sent-mark needs none.
    if (outcome !== 'unknown') {
      this.delivery.settled(notificationId, userId);
      this.scheduler.acked(notificationId, userId);
    }
    if (changed && outcome === 'acked') {
      this.metrics.delivery('acked');
      this.webhooks.record('notification.acked', notificationId, userId);
      if (sincePublishMs !== undefined) this.metrics.publishToAck.observe(sincePublishMs / 1000);
      if (sinceSentMs !== undefined) this.metrics.sendToAck.observe(sinceSentMs / 1000);
    } else if (changed && outcome === 'expired') {
      this.metrics.delivery('expired');
    }
    // Checked first: an ack is the most frequent frame, and a debug call that logs nothing still costs.
    if (Logger.isLevelEnabled('debug')) this.logger.debug({ message: 'ack', notificationId, userId, outcome, changed });
    if (changed && this.live.wanted) {
      this.live.emit({ type: 'deliveries.changed', notificationIds: [notificationId] });
      if (outcome === 'acked') this.live.emit({ type: 'user.acked', userId, at: new Date().toISOString() });
    }
    switch (outcome) {
      case 'acked':
        return { ok: true, status: 'ok' };
      case 'duplicate':
        return { ok: true, status: 'duplicate' };
      case 'expired':
        return { ok: true, status: 'expired' };
      case 'unknown':
        return { ok: false };
    }
  }

  /**
   * `{type:"ack", id, through:true}`: acks `id` and every notification sent on this connection before it and
   * not settled since, in the replica's ack batch, answered by one `ack` frame with how many it settled.
   */
  private async ackThrough(connection: Connection, id: string, quiet: boolean): Promise<void> {
    const covered = connection.takeThrough(id);
    if (!covered) {
      connection.send(await this.throughRefusal(connection.userId, id));
      return;
    }
    const outcomes = await this.ackAll(connection.userId, covered, () => true);
    const failed = covered.filter((_, i) => outcomes[i] === null);
    if (failed.length > 0) {
      // Only these were not recorded; the client acks them again by id (they left this connection's log).
      this.acksFailed(connection, failed, id);
      return;
    }
    const status = outcomes[outcomes.length - 1];
    // Every id here was sent to this user, so none is unknown unless its record is gone.
    if (status === 'forbidden' || status == null) {
      connection.send(noSuchNotification(id));
      return;
    }
    if (quiet) return;
    const settled = outcomes.filter((o) => o !== 'forbidden').length;
    connection.send({ type: 'ack', id, status, settled });
  }

  /** Acks whose batch could not be written: logged, and named to the client to send again. */
  private acksFailed(connection: Connection, ids: string[], id?: string): void {
    this.logger.error({ message: 'acks failed', connectionId: connection.id, count: ids.length });
    connection.send({
      type: 'error',
      code: ErrorCode.Unavailable,
      message: 'could not record these acks, retry',
      ...(id !== undefined ? { id } : {}),
      ids,
    });
  }

  /** Why an ack with `through` names nothing this connection can settle: one exact error per case. */
  private async throughRefusal(userId: string, id: string): Promise<ServerFrame> {
    const status = isNotificationId(id) ? await this.deliveries.statusOf(id, userId) : null;
    // Unknown, and another user's, get the answer of a per-id ack: nothing to learn by probing.
    if (status === null) return noSuchNotification(id);
    const message =
      status === 'acked' || status === 'expired'
        ? `"through" names a notification already settled (${status}): a repeated ack, or acked by id; nothing was acked`
        : '"through" names a notification not sent on this connection (or sent too long ago to be remembered); ack it by id';
    return { type: 'error', code: ErrorCode.BadRequest, message, id };
  }
}

/** The message of a quiet `acks` frame's error naming the ids that are not this user's notifications. */
const NO_SUCH_NOTIFICATIONS = 'no such notifications for this user: none of these ids was acked';

/** The answer to an ack of an id that is not one of this user's notifications (or not a notification id). */
function noSuchNotification(id: string): ErrorFrame {
  return { type: 'error', code: ErrorCode.Forbidden, message: 'no such notification for this user', id };
}
