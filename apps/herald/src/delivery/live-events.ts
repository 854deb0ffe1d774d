import { Injectable } from '@nestjs/common';
import type { PresenceEntry } from './presence.repository';

/** What happens on this replica's live side, for whoever watches (the admin stream). */
export type LiveEvent =
  | { type: 'connection.opened'; connection: PresenceEntry }
  | { type: 'connection.closed'; connectionId: string; userId: string; replicaId: string; code: number }
  /** Deliveries of these notifications changed state (sent, acked, failed, expired). */
  | { type: 'deliveries.changed'; notificationIds: string[] }
  | { type: 'user.acked'; userId: string; at: string };

/**
 * An in-process hub: the delivery code says what happened without knowing
 * who listens, so it does not depend on the admin module.
 */
@Injectable()
export class LiveEvents {
  private readonly listeners = new Set<(event: LiveEvent) => void>();

  on(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: LiveEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
