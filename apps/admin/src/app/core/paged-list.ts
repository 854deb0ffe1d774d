import { signal } from '@angular/core';
import { describeError } from './api-error';

/** A page of a cursor-paged admin list (the history, an inbox). */
export interface CursorPage<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * A list read a page at a time, with its loading and error state as signals. A new listing (`reset`) drops
 * the answers still on their way to the one before, so a slow old answer never lands in a new list.
 */
export class PagedList<T> {
  readonly items = signal<T[]>([]);
  readonly next = signal<string | null>(null);
  readonly loading = signal(false);
  readonly error = signal<string | null>(null);
  private listing = 0;

  /** Starts a new listing: nothing listed, no error, and what the previous one still awaits is dropped. */
  reset(): void {
    this.listing += 1;
    this.items.set([]);
    this.next.set(null);
    this.loading.set(false);
    this.error.set(null);
  }

  /** Reads a page with `read` and appends it; `onPage` sees each page that still belongs to this listing. */
  async load<P extends CursorPage<T>>(read: () => Promise<P>, onPage?: (page: P) => void): Promise<void> {
    const listing = this.listing;
    this.loading.set(true);
    this.error.set(null);
    try {
      const page = await read();
      if (listing !== this.listing) return;
      onPage?.(page);
      this.items.update((list) => [...list, ...page.items]);
      this.next.set(page.nextCursor);
    } catch (error) {
      if (listing === this.listing) this.error.set(describeError(error));
    } finally {
      if (listing === this.listing) this.loading.set(false);
    }
  }
}
