import type { AdminEvent } from '@herald/protocol';

export type ProgressEvent = Extract<AdminEvent, { type: 'notification.progress' }>;

/**
 * The newest progress per notification: replicas read counts independently,
 * so an older reading can arrive after a newer one and must not win.
 */
export class LatestProgress {
  private readonly byId = new Map<string, ProgressEvent>();

  constructor(private readonly capacity = 500) {}

  /** Keeps `event` if it is newer than what is known; returns whether it was. */
  offer(event: ProgressEvent): boolean {
    const known = this.byId.get(event.id);
    if (known && known.at > event.at) return false;
    this.byId.delete(event.id);
    this.byId.set(event.id, event);
    if (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value as string);
    return true;
  }

  get(id: string): ProgressEvent | undefined {
    return this.byId.get(id);
  }
}
