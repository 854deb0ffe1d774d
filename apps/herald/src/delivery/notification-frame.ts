import type { NotificationFrame } from '@herald/protocol';
import type { StoredNotification } from '../notifications/notification.types';
import type { BusNotification } from './bus';

export function toBusNotification(n: StoredNotification): BusNotification {
  return {
    id: n.id,
    seq: n.seq,
    event: n.event,
    payload: n.payload,
    topic: n.topic,
    createdAt: n.createdAt.toISOString(),
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
