import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting, TestRequest } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter, Router } from '@angular/router';
import type { AdminInboxResponse, InboxItem } from '@herald/protocol';
import { previewOf, UserInbox } from './user-inbox';

let seq = 100;
const item = (over: Partial<InboxItem> = {}): InboxItem => {
  seq -= 1;
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    seq,
    event: 'order.shipped',
    payload: { order: seq },
    timestamp: '2026-12-07T10:00:00.000Z',
    seen: false,
    read: false,
    archived: false,
    ...over,
  };
};

const page = (over: Partial<AdminInboxResponse> = {}): AdminInboxResponse => ({
  userId: 'alice',
  unreadCount: 0,
  inboxRetentionDays: 30,
  items: [],
  nextCursor: null,
  ...over,
});

describe('UserInbox', () => {
  let fixture: ComponentFixture<UserInbox>;
  let root: HTMLElement;
  let http: HttpTestingController;

  beforeEach(() => {
    TestBed.configureTestingModule({
      imports: [UserInbox],
      providers: [provideZonelessChangeDetection(), provideHttpClient(), provideHttpClientTesting(), provideRouter([])],
    });
    http = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(UserInbox);
    root = fixture.nativeElement as HTMLElement;
  });

  afterEach(() => http.verify());

  const text = (selector: string) => root.querySelector(selector)?.textContent?.replace(/\s+/g, ' ').trim();

  /** Opens the view on `userId` (the route's input) and answers its first read. */
  async function open(userId: string, answer: AdminInboxResponse): Promise<TestRequest> {
    fixture.componentRef.setInput('userId', userId);
    await fixture.whenStable();
    const call = http.expectOne((r) => r.url === `/admin/api/users/${userId}/inbox`);
    call.flush(answer);
    await settled();
    return call;
  }

  /** An answer settles the load a few microtasks later: wait for it, with vi.waitFor's deadline. */
  async function settled(): Promise<void> {
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(
        root.querySelector('[data-testid="inbox-table"], [data-testid="inbox-empty"], [role="alert"]'),
      ).not.toBeNull();
      expect(root.textContent).not.toContain('Loading…');
    });
  }

  it('shows the unread count and each item, newest first, with what the user saw, read and archived', async () => {
    const [fresh, read, archived] = [
      item({ topic: 'orders' }),
      item({ seen: true, read: true, event: 'invoice.paid' }),
      item({ seen: true, archived: true, payload: { text: 'x'.repeat(200) } }),
    ];
    const call = await open('alice', page({ unreadCount: 1, items: [fresh, read, archived] }));
    expect(call.request.params.get('limit')).toBe('20');
    expect(call.request.params.has('unread')).toBe(false);
    expect(text('[data-testid="inbox-unread"]')).toBe('1');
    expect(text('[data-testid="inbox-retention"]')).toContain('listed for 30 days from publish');
    const rows = [...root.querySelectorAll<HTMLTableRowElement>('[data-testid="inbox-table"] tbody tr')];
    expect(rows.map((r) => r.dataset['id'])).toEqual([fresh.id, read.id, archived.id]);
    const cell = (row: HTMLElement, field: string) => row.querySelector(`[data-field="${field}"]`)?.textContent;
    expect([cell(rows[0]!, 'seen'), cell(rows[0]!, 'read'), cell(rows[0]!, 'archived')]).toEqual(['no', 'no', 'no']);
    expect([cell(rows[1]!, 'seen'), cell(rows[1]!, 'read'), cell(rows[1]!, 'archived')]).toEqual(['yes', 'yes', 'no']);
    expect(cell(rows[2]!, 'archived')).toBe('yes');
    expect(rows[0]!.textContent).toContain('orders');
    expect(rows[1]!.textContent).toContain('invoice.paid');
    expect(rows[0]!.classList).toContain('unread');
    expect(rows[1]!.classList).not.toContain('unread');
    // The preview is cut; the whole payload is in the row's details.
    expect(rows[2]!.querySelector('summary')?.textContent).toHaveLength(80);
    expect(rows[2]!.querySelector('pre')?.textContent).toContain('x'.repeat(200));
    // Each item links to its notification's timeline.
    expect(rows[0]!.querySelector('a')?.getAttribute('href')).toBe(`/notifications/${fresh.id}`);
  });

  it('reads the older pages by nextCursor, and keeps what it listed', async () => {
    const first = item();
    await open('alice', page({ unreadCount: 2, items: [first], nextCursor: '57' }));
    expect(text('[data-testid="inbox-listed"]')).toBe('1+');
    // An event name typed but not applied does not change the listing the older page belongs to.
    const event = root.querySelector<HTMLInputElement>('input[name="event"]')!;
    event.value = 'typed.only';
    event.dispatchEvent(new Event('input'));
    root.querySelector<HTMLButtonElement>('[data-testid="inbox-older"]')!.click();
    const older = item({ read: true, seen: true });
    const call = http.expectOne((r) => r.url === '/admin/api/users/alice/inbox');
    expect(call.request.params.get('cursor')).toBe('57');
    expect(call.request.params.has('event')).toBe(false);
    call.flush(page({ unreadCount: 2, items: [older], nextCursor: null }));
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(root.querySelectorAll('[data-testid="inbox-table"] tbody tr')).toHaveLength(2);
    });
    expect(root.querySelector('[data-testid="inbox-older"]')).toBeNull();
    expect(text('[data-testid="inbox-listed"]')).toBe('2');
  });

  it('asks again from the first page with the filters, and says when nothing matches', async () => {
    await open('alice', page({ unreadCount: 1, items: [item()], nextCursor: '9' }));
    root.querySelector<HTMLInputElement>('input[formControlName="unread"]')!.click();
    const event = root.querySelector<HTMLInputElement>('input[name="event"]')!;
    event.value = 'invoice.paid';
    event.dispatchEvent(new Event('input'));
    // The check box asked at once; the form asks again with the event name.
    http.expectOne((r) => r.url === '/admin/api/users/alice/inbox' && r.params.get('unread') === 'true');
    root.querySelector<HTMLButtonElement>('form[aria-label="Filters"] button[type="submit"]')!.click();
    const call = http.expectOne((r) => r.params.get('event') === 'invoice.paid');
    expect(call.request.params.get('unread')).toBe('true');
    expect(call.request.params.has('cursor')).toBe(false);
    call.flush(page({ unreadCount: 1 }));
    await settled();
    expect(text('[data-testid="inbox-empty"]')).toBe('Nothing in this inbox matches the filters.');
  });

  it('checks the event name before it asks', async () => {
    await open('alice', page());
    expect(text('[data-testid="inbox-empty"]')).toContain('in the last 30 days');
    const event = root.querySelector<HTMLInputElement>('input[name="event"]')!;
    event.value = 'no spaces';
    event.dispatchEvent(new Event('input'));
    root.querySelector<HTMLButtonElement>('form[aria-label="Filters"] button[type="submit"]')!.click();
    await fixture.whenStable();
    http.expectNone((r) => r.url === '/admin/api/users/alice/inbox');
    expect(text('[data-testid="inbox-event-error"]')).toContain('An event name is');
  });

  it('shows the service’s message when it refuses', async () => {
    fixture.componentRef.setInput('userId', 'alice');
    await fixture.whenStable();
    http
      .expectOne('/admin/api/users/alice/inbox?limit=20')
      .flush(
        { error: { code: 'UNAVAILABLE', message: 'the admin API is off', requestId: 'r' } },
        { status: 503, statusText: 'Service Unavailable' },
      );
    await settled();
    expect(text('[data-testid="inbox-error"]')).toBe('the admin API is off');
    expect(root.querySelector('[data-testid="inbox-empty"]')).toBeNull();
  });

  it('says when the inbox is off', async () => {
    await open('alice', page({ inboxRetentionDays: 0 }));
    expect(text('[data-testid="inbox-retention"]')).toContain('The inbox is off');
  });

  it('highlights the item the admin came from', async () => {
    const [a, b] = [item(), item()];
    fixture.componentRef.setInput('highlight', b.id);
    await open('alice', page({ items: [a, b] }));
    expect(root.querySelector('tr.focus')?.getAttribute('data-id')).toBe(b.id);
  });

  it('opens the inbox of the user id typed, and refuses one that cannot be', async () => {
    const navigate = vi.spyOn(TestBed.inject(Router), 'navigate').mockResolvedValue(true);
    await fixture.whenStable();
    expect(root.querySelector('[data-testid="inbox-prompt"]')).not.toBeNull();
    const field = root.querySelector<HTMLInputElement>('[data-testid="inbox-user-input"]')!;
    const submit = async (value: string) => {
      field.value = value;
      field.dispatchEvent(new Event('input'));
      root.querySelector<HTMLButtonElement>('form[aria-label="User"] button[type="submit"]')!.click();
      await fixture.whenStable();
    };
    await submit('not a user');
    expect(text('[data-testid="inbox-user-error"]')).toContain('A user id is');
    expect(navigate).not.toHaveBeenCalled();
    await submit(' bob@example.com ');
    expect(navigate).toHaveBeenCalledWith(['/inbox', 'bob@example.com']);
    expect(root.querySelector('[data-testid="inbox-user-error"]')).toBeNull();
  });
});

describe('previewOf', () => {
  it('keeps a short payload whole and cuts a long one', () => {
    expect(previewOf({ a: 1 })).toBe('{"a":1}');
    expect(previewOf('x'.repeat(100), 10)).toBe('"xxxxxxxx…');
    expect(previewOf(null)).toBe('null');
  });
});
