import { Injectable, Logger } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { toBusNotification } from '../delivery/notification-frame';
import type { StoredNotification } from '../record/notification.types';
import { Bus, type BusNotification } from './bus';

/**
 * A user list goes out user by user (only the replicas holding them hear it)
 * while that stays small; beyond, it goes once to every replica with the
 * recipient list, so a big list or a big payload is not copied per user.
 */
const PER_USER_ROUTING_MAX_USERS = 64;
const PER_USER_ROUTING_MAX_BYTES = 256 * 1024;

/**
 * The step from the record to the bus: a stored notification announced to the replicas that hold its
 * recipients, whose bus handlers (DeliveryService) send it.
 */
@Injectable()
export class NotificationRouter {
  private readonly logger = new Logger(NotificationRouter.name);

  constructor(
    private readonly bus: Bus,
    private readonly cls: ClsService,
  ) {}

  /**
   * Tells the replicas holding the recipients that a stored notification
   * exists, with the id of the request that published it (the request
   * context's). Best effort: if Redis is down the deliveries stay `pending`
   * and the sweep routes them later.
   */
  async route(notification: StoredNotification, audience: 'users' | 'topic' | 'all', userIds: string[]): Promise<void> {
    try {
      // Bounded by the Redis client: a 2 s command timeout, about a second of retries on a cluster's failover.
      await this.send(toBusNotification(notification, this.cls.getId()), audience, userIds);
    } catch (error) {
      this.logger.warn({
        message: 'bus publish failed; the sweep will route the deliveries',
        notificationId: notification.id,
        error: (error as Error).message,
      });
    }
  }

  private async send(message: BusNotification, audience: 'users' | 'topic' | 'all', userIds: string[]): Promise<void> {
    if (audience !== 'users') {
      await this.bus.publishBroadcast({ kind: 'broadcast', notification: message });
    } else if (
      // One user is one copy either way: its message is not serialized twice just to measure it.
      userIds.length === 1 ||
      (userIds.length <= PER_USER_ROUTING_MAX_USERS &&
        userIds.length * JSON.stringify(message).length <= PER_USER_ROUTING_MAX_BYTES)
    ) {
      await this.bus.publishToUsers(userIds, { kind: 'deliver', notification: message, attempt: 1 });
    } else {
      await this.bus.publishBroadcast({ kind: 'broadcast', notification: message, userIds });
    }
  }
}
