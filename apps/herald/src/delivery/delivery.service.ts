import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { CloseCode, type NotificationFrame } from '@herald/protocol';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { deliveryKey, DeliveryRepository } from '../record/delivery.repository';
import { retryOnDeadlock } from '../record/sql';
import type { SentDelivery } from '../record/notification.types';
import { backstopAt, redeliveryDelayMs } from '../redelivery/backoff';
import { Batcher } from '../common/batcher';
import { KeyedChain } from '../common/keyed-chain';
import { StreamRepository } from '../record/stream.repository';
import { AckWriter } from '../acks/ack-writer';
import { StreamFollower } from '../routing/stream-follower';
import { DeferredQueue } from '../common/deferred-queue';
import { Bus, BusNotification } from '../routing/bus';
import { ConnectionRegistry } from '../connections/connection-registry';
import { LiveEvents } from './live-events';
import { toNotificationFrame } from './notification-frame';
import { CHECK_SLOT_MS, RedeliveryScheduler } from '../redelivery/redelivery.scheduler';
import { WebhookInterest } from '../webhooks/webhook-interest';

/**
 * Sends to one user (the usual live send, and every redelivery) are recorded together: what the bus
 * brings in one tick is one statement and one commit. Several batches may be written at once.
 */
const SEND_BATCH_MAX = 500;
const SEND_BATCHES_IN_FLIGHT = 2;

/**
 * A first send over WebSockets is recorded this long after its frame left (`sendThenRecord`): by then most
 * are acked, and the ack records the send, so the sent-mark writes nothing for them.
 */
export const SEND_RECORD_DELAY_MS = 100;

/** How often a replica compares its place in each broadcast stream with the heads (StreamFollower). */
const STREAM_CATCH_UP_MS = 1000;

/** What a recorded send needs of its notification: the id, and the publishing request's for the checks' logs. */
type Sent = Pick<BusNotification, 'id' | 'requestId'>;

interface UnrecordedSend {
  notification: Sent;
  userIds: string[];
}

interface OneSend {
  notificationId: string;
  userId: string;
  attempt: number;
  nextAttemptAt: Date;
}

/**
 * A send to more local recipients than this gets no timer per delivery (a row check reads its row on its
 * own): their `next_attempt_at` is the check time itself, and the sweep, which reads due deliveries 500 at
 * a time, checks them within one HERALD_SWEEP_INTERVAL_MS of it.
 */
const TIMERS_MAX_PER_SEND = 100;

/**
 * Past its TTL (a bus message that came late): nothing to send; the sweep ends the deliveries. A send that
 * leaves before it is recorded has no statement to check this.
 */
function pastTtl(notification: BusNotification): boolean {
  return notification.expiresAt !== undefined && notification.expiresAt <= Date.now();
}

/**
 * Where deliveries change state on the live side: the bus's messages (NotificationRouter's, the resends')
 * sent to this replica's users (the replay on connect is Replay's, acks are AckService's). A resend, and a
 * send to an SSE stream, is recorded in PostgreSQL before its frame leaves. A first send over WebSockets
 * leaves first and is recorded by its ack or, if none came, `SEND_RECORD_DELAY_MS` later; until then the
 * delivery reads `pending`.
 */
@Injectable()
export class DeliveryService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(DeliveryService.name);
  /** Each user's sends on this replica, one after the other (see inOrderFor). */
  private readonly userQueues = new KeyedChain<string>();
  /** This replica's place in each broadcast stream (ADR 0007). */
  readonly follower: StreamFollower;
  private catchUpTimer?: NodeJS.Timeout;
  /** Single-user sends of this replica, recorded a batch at a time. */
  private readonly sends: Batcher<OneSend, SentDelivery | null>;
  /** First sends that left before they were recorded, waiting to be (see sendThenRecord). */
  private readonly unrecorded = new DeferredQueue<UnrecordedSend>(SEND_RECORD_DELAY_MS, (sends) =>
    this.recordLater(sends),
  );
  /**
   * The deliveries (`deliveryKey`) of those sends that are still open as far as this replica
   * knows: an ack written here takes its delivery out, and its sent-mark then skips it.
   */
  private readonly unrecordedOpen = new Set<string>();

  constructor(
    private readonly bus: Bus,
    private readonly registry: ConnectionRegistry,
    private readonly deliveries: DeliveryRepository,
    private readonly scheduler: RedeliveryScheduler,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly live: LiveEvents,
    private readonly streams: StreamRepository,
    /** Acks of every connection here: told which notifications this replica sent from a stream. */
    private readonly acks: AckWriter,
    private readonly webhooks: WebhookInterest,
  ) {
    this.follower = new StreamFollower(
      streams,
      (notification) => this.deliverStream(notification),
      (fetched) => this.metrics.streamGapFetched(fetched),
    );
    this.sends = new Batcher((items) => retryOnDeadlock(() => this.deliveries.markSentMany(items)), {
      windowMs: 0,
      maxBatch: SEND_BATCH_MAX,
      maxInFlight: SEND_BATCHES_IN_FLIGHT,
    });
  }

  /** Shutdown: the sends still waiting are recorded now, and later ones at once. */
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.catchUpTimer);
    await this.unrecorded.close();
  }

  async onModuleInit(): Promise<void> {
    await this.follower.start();
    // A broadcast the bus lost is read from the record within this (an absent subscriber: BusCatchUp).
    this.catchUpTimer = setInterval(() => void this.follower.tick(), STREAM_CATCH_UP_MS);
    this.catchUpTimer.unref();
    this.bus.setHandlers({
      deliver: (userId, message) => {
        if (message.notification.callback) this.webhooks.expectCallback(message.notification.expiresAt);
        this.track(
          this.inOrderFor(userId, () => this.deliverToLocal([userId], message.notification, message.attempt, true)),
        );
      },
      // A topic or everyone broadcast names no users: it goes through its stream, in offset order, to the
      // local users whose cursor has it open (deliverStream). A user list names its recipients.
      broadcast: (message) => {
        if (message.notification.callback) this.webhooks.expectCallback(message.notification.expiresAt);
        if (message.userIds) {
          this.track(this.deliverToLocal(message.userIds, message.notification, 1, true));
        } else if (message.notification.stream) {
          this.track(this.follower.receive(message.notification));
        }
      },
      alive: (userId, message) => this.streamAlive(userId, message.connectionId),
      disconnect: (userId, message) => {
        const connection = this.registry.get(message.connectionId);
        if (connection?.userId === userId) connection.close(CloseCode.Normal, 'disconnected by an admin');
      },
      state: (userId, message) => {
        for (const connection of this.registry.connectionsOf(userId))
          if (connection.info.inbox) connection.send(message.frame);
      },
    });
  }

  /**
   * Runs a user's sends one after the other, in the order the bus brought
   * them: two notifications published in turn to one user are recorded and
   * sent in turn, not in whatever order their database writes finish.
   */
  private inOrderFor(userId: string, work: () => Promise<void>): Promise<void> {
    return this.userQueues.run(userId, work);
  }

  /** An SSE client answered its stream's heartbeat; true when the stream is held here. */
  streamAlive(userId: string, connectionId: string): boolean {
    const connection = this.registry.get(connectionId);
    if (!connection || connection.userId !== userId) return false;
    connection.pong();
    return true;
  }

  /**
   * Routes an SSE client's heartbeat answer to the replica holding its stream
   * (the request may have reached another). False: no replica holds it.
   */
  async routeStreamAlive(userId: string, connectionId: string): Promise<boolean> {
    if (this.streamAlive(userId, connectionId)) return true;
    return (await this.bus.publishToUsers([userId], { kind: 'alive', connectionId })) > 0;
  }

  /**
   * Sends send number `attempt` of a notification to those of `userIds` connected here that have an open
   * delivery of it. `recipients`: every one of `userIds` is a recipient (a user-list publish, a resend);
   * then a first send to users whose connections here are all WebSockets leaves at once and is recorded
   * `SEND_RECORD_DELAY_MS` later (`sendThenRecord`). Every other send is recorded first, and the record
   * tells who has a delivery.
   */
  async deliverToLocal(
    userIds: string[],
    notification: BusNotification,
    attempt: number,
    recipients = false,
  ): Promise<void> {
    let local = userIds.filter((u) => this.registry.hasUser(u));
    if (local.length === 0 || pastTtl(notification)) return;
    if (attempt === 1 && recipients) {
      const first = local.filter((u) => this.sendsBeforeRecording(u));
      if (first.length > 0) this.sendThenRecord(first, notification);
      if (first.length === local.length) return;
      const sentNow = new Set(first);
      local = local.filter((u) => !sentNow.has(u));
    }
    const sent = await this.record(notification, local, attempt);
    this.sendRecorded(notification, sent, attempt);
  }

  /**
   * A topic or everyone broadcast recorded on its stream (ADR 0007), in offset order (StreamFollower): one
   * read finds which of this replica's users have it open; the frames leave, and this replica checks the
   * send at the first attempt's delay (RedeliveryScheduler, ADR 0009). Nothing is written for the send, over
   * WebSockets and SSE alike.
   */
  private async deliverStream(notification: BusNotification): Promise<void> {
    const local = this.registry.userIds();
    if (local.length === 0 || pastTtl(notification)) return;
    const stream = notification.stream!;
    const userIds = await this.streams.openAmong(stream.id, stream.offset, local);
    if (userIds.length === 0) return;
    this.acks.sentFromStream(notification.id);
    const now = Date.now();
    this.scheduler.scheduleStream(notification.id, userIds, new Date(now), now + redeliveryDelayMs(1, this.config));
    this.sendRecorded(
      notification,
      userIds.map((userId) => ({ userId, attempt: 1, counted: true })),
      1,
    );
  }

  /** Sends the frames of deliveries whose send is recorded, and counts the ones the record counted. */
  private sendRecorded(notification: BusNotification, sent: SentDelivery[], attempt: number): void {
    // One frame object per attempt number, so its JSON is made once for every recipient (frameText).
    const frames = new Map<number, NotificationFrame>();
    for (const delivery of sent) {
      let frame = frames.get(delivery.attempt);
      if (!frame) {
        frame = toNotificationFrame(notification, delivery.attempt);
        frames.set(delivery.attempt, frame);
      }
      for (const connection of this.registry.connectionsOf(delivery.userId)) connection.deliver(frame);
    }
    const counted = sent.filter((d) => d.counted);
    this.metrics.sent(counted.map((d) => d.attempt));
    this.logSent(
      notification,
      counted.map((d) => d.userId),
      attempt,
    );
  }

  /**
   * Whether a first send to this user may leave before it is recorded: when every connection of the user
   * here is a WebSocket. An SSE stream resumes with `Last-Event-ID`, which skips what was recorded sent
   * (protocol.md, section 10), so its sends are recorded first.
   */
  private sendsBeforeRecording(userId: string): boolean {
    for (const connection of this.registry.connectionsOf(userId)) {
      if (connection.transportKind !== 'websocket') return false;
    }
    return true;
  }

  /**
   * A first send that leaves now and is recorded later: the frame goes to every connection at once, and
   * `SEND_RECORD_DELAY_MS` later `record` marks sent what is still open then and schedules its checks.
   * Most clients ack within that time: their ack records the send with itself (ACK_SET), and the later
   * `record` finds the delivery closed and writes nothing. A replica that dies in between leaves the
   * delivery `pending`, as if never sent: it is replayed on the user's next connection, or routed again
   * by the sweep at its `next_attempt_at`.
   */
  private sendThenRecord(userIds: string[], notification: BusNotification): void {
    const frame = toNotificationFrame(notification, 1);
    for (const userId of userIds) {
      for (const connection of this.registry.connectionsOf(userId)) connection.deliver(frame);
    }
    this.metrics.sent(userIds.map(() => 1));
    this.logSent(notification, userIds, 1);
    for (const userId of userIds) this.unrecordedOpen.add(deliveryKey(notification.id, userId));
    this.unrecorded.add({ notification: { id: notification.id, requestId: notification.requestId }, userIds });
  }

  /**
   * The sends `sendThenRecord` made, recorded now, but for the ones whose ack this replica has written
   * since (the ack recorded the send): the usual case, since a user's acks come on the connection that got
   * the frame, so usually no statement is needed at all. Never throws (a send not recorded is the sweep's).
   */
  private async recordLater(sends: UnrecordedSend[]): Promise<void> {
    const open: UnrecordedSend[] = [];
    for (const send of sends) {
      const userIds = send.userIds.filter((userId) =>
        this.unrecordedOpen.delete(deliveryKey(send.notification.id, userId)),
      );
      if (userIds.length > 0) open.push({ ...send, userIds });
    }
    await Promise.all(
      open.map((s) =>
        this.record(s.notification, s.userIds, 1).catch((error: unknown) =>
          this.logger.warn({
            message: 'could not record a send; the sweep will route it again',
            notificationId: s.notification.id,
            requestId: s.notification.requestId,
            error: (error as Error).message,
          }),
        ),
      ),
    );
  }

  /**
   * Records send number `attempt` of a notification to `userIds` (marks the open deliveries sent) and
   * schedules the checks of the sends this call counted. Answers the deliveries that were open.
   */
  private async record(notification: Sent, userIds: string[], attempt: number): Promise<SentDelivery[]> {
    const { id: notificationId, requestId } = notification;
    const bySweep = userIds.length > TIMERS_MAX_PER_SEND;
    // With timers, the backstop lies past the latest time the timer can fire (jitter at its upper bound,
    // one slot late); without, it is the check time.
    const nextAttemptAt = bySweep
      ? new Date(Date.now() + redeliveryDelayMs(attempt, this.config))
      : backstopAt(redeliveryDelayMs(attempt, this.config, () => 1) + CHECK_SLOT_MS, this.config);
    let sent: SentDelivery[];
    if (userIds.length === 1) {
      const one = await this.sends.add({ notificationId, userId: userIds[0]!, attempt, nextAttemptAt });
      sent = one ? [one] : [];
    } else {
      // Its rows are locked in index order, an ack batch's in key order: a rare deadlock is retried.
      sent = await retryOnDeadlock(() => this.deliveries.markSent(notificationId, userIds, attempt, nextAttemptAt));
    }
    if (sent.length > 0) this.live.emit({ type: 'deliveries.changed', notificationIds: [notificationId] });
    if (!bySweep) {
      this.scheduler.schedule(
        sent.filter((d) => d.counted).map((d) => ({ notificationId, userId: d.userId, attempt: d.attempt, requestId })),
        (n) => redeliveryDelayMs(n, this.config),
      );
    }
    return sent;
  }

  /** One line per delivery: skipped whole unless debug is on, since a broadcast can be thousands. */
  private logSent(notification: Sent, userIds: string[], attempt: number): void {
    if (!Logger.isLevelEnabled('debug')) return;
    const { id: notificationId, requestId } = notification;
    for (const userId of userIds) {
      this.logger.debug?.({ message: 'delivery sent', notificationId, userId, attempt, requestId });
    }
  }

  /**
   * An ack here closed this delivery (AckService): a send of it waiting for its sent-mark (`sendThenRecord`)
   * needs none.
   */
  settled(notificationId: string, userId: string): void {
    this.unrecordedOpen.delete(deliveryKey(notificationId, userId));
  }

  private track(work: Promise<void>): void {
    work.catch((error: unknown) =>
      this.logger.error({ message: 'live delivery failed; the sweep will retry', error: (error as Error).message }),
    );
  }
}
