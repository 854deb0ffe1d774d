import type { NotificationFrame } from '@herald/protocol';
import type { ReplayedDelivery } from '../record/notification.types';
import type { StoredNotification } from '../record/notification.types';
import type { BusNotification } from '../routing/bus';
import { withFrameText } from '../connections/transport';

/** A stored notification as the bus carries it, with the id of the request that led to this send, if any. */
export function toBusNotification(n: StoredNotification, requestId?: string): BusNotification {
  return {
    id: n.id,
    seq: n.seq,
    event: n.event,
    payload: n.payload,
    topic: n.topic,
    createdAt: n.createdAt.toISOString(),
    expiresAt: n.expiresAt.getTime(),
    ...(n.stream ? { stream: n.stream } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    ...(n.callback ? { callback: true } : {}),
  };
}

export function toNotificationFrame(n: BusNotification, attempt: number): NotificationFrame {
  const frame: NotificationFrame = {
    type: 'notification',
    id: n.id,
    seq: n.seq,
    event: n.event,
    payload: n.payload,
    timestamp: n.createdAt,
    attempt,
  };
  if (n.topic !== null) frame.topic = n.topic;
  return frame;
}

/**
 * A replayed delivery's frame, with its JSON built around the payload text PostgreSQL printed, in the
 * frame's own key order: a replay sends thousands of distinct frames, and serialising each payload again
 * would cost a catch-up most (docs/performance.md, section 5). The text differs from
 * `JSON.stringify(frame)` only in the payload's spacing (`{"a": 1}`), which JSON ignores.
 */
export function toReplayedFrame(item: ReplayedDelivery): NotificationFrame {
  const n = item.notification;
  const frame = toNotificationFrame(n, item.attempt);
  const topic = n.topic === null ? '' : `,"topic":${JSON.stringify(n.topic)}`;
  return withFrameText(
    frame,
    `{"type":"notification","id":"${n.id}","seq":${n.seq},"event":${JSON.stringify(n.event)},` +
      `"payload":${item.payloadText},"timestamp":"${n.createdAt}","attempt":${item.attempt}${topic}}`,
  );
}
