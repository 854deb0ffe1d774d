import { DatePipe, JsonPipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, effect, inject, input, signal, untracked } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { NonNullableFormBuilder, ReactiveFormsModule } from '@angular/forms';
import { Router, RouterLink } from '@angular/router';
import {
  DEFAULT_INBOX_PAGE,
  EVENT_PATTERN,
  USER_ID_PATTERN,
  type AdminInboxResponse,
  type InboxItem,
  type JsonValue,
} from '@herald/protocol';
import { PagedList } from '../core/paged-list';
import { InboxApi, type InboxFilter } from './inbox-api';

/** Longest payload preview shown in a row, in characters; the whole payload is one click away. */
export const PREVIEW_LENGTH = 80;

/** A payload on one line, cut at `max` characters. */
export function previewOf(payload: JsonValue, max = PREVIEW_LENGTH): string {
  const text = JSON.stringify(payload) ?? 'null';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The whole-inbox facts of the last page read (they do not depend on the filters). */
type InboxSummary = Pick<AdminInboxResponse, 'userId' | 'unreadCount' | 'inboxRetentionDays'>;

/**
 * A user's inbox as their own devices see it (issue 29): what they have, what they saw, read and archived,
 * newest first, a page at a time. Read-only: the read state is the user's to change.
 */
@Component({
  selector: 'hd-user-inbox',
  imports: [DatePipe, JsonPipe, ReactiveFormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './user-inbox.html',
})
export class UserInbox {
  /** The route's `:userId`; absent on `/inbox`, where the admin types one. */
  readonly userId = input<string>();
  /** `?highlight=<notification id>`: the item the admin came from (a delivery of the notification timeline). */
  readonly highlight = input<string>();

  private readonly api = inject(InboxApi);
  private readonly router = inject(Router);
  private readonly fb = inject(NonNullableFormBuilder);
  protected readonly userForm = this.fb.group({ userId: '' });
  protected readonly filters = this.fb.group({ unread: false, archived: false, event: '' });
  protected readonly userError = signal<string | null>(null);
  protected readonly eventError = signal<string | null>(null);

  protected readonly summary = signal<InboxSummary | null>(null);
  private readonly list = new PagedList<InboxItem>();
  protected readonly items = this.list.items;
  protected readonly next = this.list.next;
  protected readonly loading = this.list.loading;
  protected readonly error = this.list.error;
  /** The filters the items shown were listed with (the form may have changed since), for the older pages. */
  private applied: InboxFilter = {};
  protected readonly filtered = signal(false);
  protected readonly preview = previewOf;
  protected readonly emptyMessage = computed(() => {
    if (this.filtered()) return 'Nothing in this inbox matches the filters.';
    const days = this.summary()?.inboxRetentionDays;
    return days
      ? `Nothing in this inbox: nothing was published to this user in the last ${days} days, or it is all archived.`
      : 'Nothing in this inbox.';
  });

  constructor() {
    // The check boxes apply at once; the event name when the form is sent.
    for (const box of [this.filters.controls.unread, this.filters.controls.archived]) {
      box.valueChanges.pipe(takeUntilDestroyed()).subscribe(() => void this.search());
    }
    // Another user in the route (the same view, reused): show their inbox from the first page.
    effect(() => {
      const userId = this.userId();
      untracked(() => {
        this.userForm.setValue({ userId: userId ?? '' });
        this.userError.set(null);
        this.summary.set(null);
        void this.search();
      });
    });
  }

  /** The user id form: open that user's inbox. */
  async open(): Promise<void> {
    const userId = this.userForm.getRawValue().userId.trim();
    if (!USER_ID_PATTERN.test(userId)) {
      this.userError.set('A user id is 1–128 letters, digits or _ . @ : -');
      return;
    }
    this.userError.set(null);
    if (userId === this.userId()) await this.search();
    else await this.router.navigate(['/inbox', userId]);
  }

  /** The first page, with the filters as they are in the form. */
  async search(): Promise<void> {
    this.list.reset();
    const { unread, archived, event } = this.filters.getRawValue();
    if (event.trim() !== '' && !EVENT_PATTERN.test(event.trim())) {
      this.eventError.set('An event name is 1–128 letters, digits or _ . : -');
      return;
    }
    this.eventError.set(null);
    this.applied = { unread, archived, event: event.trim() };
    this.filtered.set(unread || archived || event.trim() !== '');
    if (!this.userId()) {
      this.summary.set(null);
      return;
    }
    await this.load();
  }

  /** The next (older) page, after the last item shown. */
  async more(): Promise<void> {
    const cursor = this.next();
    if (cursor) await this.load(cursor);
  }

  private async load(cursor?: string): Promise<void> {
    const userId = this.userId();
    if (!userId) return;
    const filter = { ...this.applied, ...(cursor ? { cursor } : {}) };
    await this.list.load(
      () => this.api.get(userId, filter, DEFAULT_INBOX_PAGE),
      ({ unreadCount, inboxRetentionDays }) => this.summary.set({ userId, unreadCount, inboxRetentionDays }),
    );
  }
}
