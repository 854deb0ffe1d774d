import { Injectable } from '@nestjs/common';
import type { PresenceEntry } from '../routing/presence.repository';

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
  private interest: () => boolean = () => true;

  on(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells whether anyone would see events now (an admin watching somewhere); set by the listener. */
  setInterest(interest: () => boolean): void {
    this.interest = interest;
  }

  /** False when nobody would see an event: callers on hot paths skip building it. */
  get wanted(): boolean {
    return this.listeners.size > 0 && this.interest();
  }

  emit(event: LiveEvent): void {
    if (!this.wanted) return;
    for (const listener of this.listeners) listener(event);
  }
}
