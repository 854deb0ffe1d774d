import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting, TestRequest } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import type { AdminWebhook, WebhookAttempt } from '@herald/protocol';
import { ATTEMPTS_FIRST, ATTEMPTS_MOST, WebhookDetail } from './webhook-detail';
import { attempt, endpoint } from './webhook-test-data';

describe('WebhookDetail', () => {
  let fixture: ComponentFixture<WebhookDetail>;
  let root: HTMLElement;
  let http: HttpTestingController;

  beforeEach(() => {
    TestBed.configureTestingModule({
      imports: [WebhookDetail],
      providers: [provideZonelessChangeDetection(), provideHttpClient(), provideHttpClientTesting(), provideRouter([])],
    });
    http = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(WebhookDetail);
    root = fixture.nativeElement as HTMLElement;
  });

  afterEach(() => http.verify());

  const text = (selector: string, within: ParentNode = root) =>
    within.querySelector(selector)?.textContent?.replace(/\s+/g, ' ').trim();
  const rows = () => [...root.querySelectorAll<HTMLTableRowElement>('[data-testid="attempts-table"] tbody tr')];
  const cell = (row: HTMLElement, field: string) => text(`[data-field="${field}"]`, row);

  /** The one read of the endpoint's attempts the view made: answered with `endpoint` and `items`. */
  async function answer(w: AdminWebhook, items: WebhookAttempt[]): Promise<TestRequest> {
    const call = http.expectOne((r) => r.url === `/admin/api/webhooks/${w.id}/attempts`);
    call.flush({ endpoint: w, items });
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(root.querySelector('[data-testid="attempts-table"], [data-testid="attempts-empty"]')).not.toBeNull();
      expect(
        root.querySelector<HTMLButtonElement>('[data-testid="attempts-refresh"]')?.disabled,
        'the read to settle',
      ).toBe(false);
    });
    return call;
  }

  async function open(w: AdminWebhook, items: WebhookAttempt[]): Promise<TestRequest> {
    fixture.componentRef.setInput('id', w.id);
    await fixture.whenStable();
    return answer(w, items);
  }

  it('shows the endpoint and its latest attempts, failures marked, with status, latency and error', async () => {
    const w = endpoint({
      url: 'https://orders.example.com/herald?tenant=7',
      events: ['notification.acked', 'notification.expired'],
      description: 'order service',
      publisherId: 'orders',
      pendingMessages: 1,
      attemptsLastHour: 2,
      failuresLastHour: 1,
    });
    const retried = attempt({ attempt: 2, outcome: 'ok', statusCode: 200, latencyMs: 25 });
    const failed = attempt({
      messageId: retried.messageId,
      type: 'notification.expired',
      outcome: 'http',
      statusCode: 500,
      latencyMs: 140,
      error: 'HTTP 500: boom',
    });
    const call = await open(w, [retried, failed]);
    expect(call.request.params.get('limit')).toBe(String(ATTEMPTS_FIRST));
    expect(text('[data-testid="webhook-url"]')).toBe('https://orders.example.com/herald?tenant=7');
    expect(text('[data-testid="webhook-publisher"]')).toBe('orders');
    expect(text('[data-testid="webhook-events"]')).toBe('notification.acked, notification.expired');
    expect(text('[data-testid="webhook-state"]')).toBe('enabled');
    expect(text('[data-testid="webhook-pending"]')).toBe('1');
    expect(root.querySelector('[data-testid="webhook-failures-hour"]')?.classList).toContain('error');
    expect(root.textContent).toContain('order service');

    const [ok, bad] = rows();
    expect(rows().map((r) => r.dataset['id'])).toEqual([String(retried.id), String(failed.id)]);
    expect(['type', 'attempt', 'outcome', 'status', 'latency', 'error'].map((f) => cell(ok!, f))).toEqual([
      'notification.acked',
      '2',
      'ok',
      '200',
      '25',
      '',
    ]);
    expect(['type', 'attempt', 'outcome', 'status', 'latency', 'error'].map((f) => cell(bad!, f))).toEqual([
      'notification.expired',
      '1',
      'http',
      '500',
      '140',
      'HTTP 500: boom',
    ]);
    expect(ok!.classList).not.toContain('failure');
    expect(bad!.classList).toContain('failure');
    expect(bad!.querySelector('time')?.getAttribute('datetime')).toBe(failed.at);
    // Fewer than were asked for: every attempt there is, and nothing more to ask.
    expect(root.querySelector('[data-testid="attempts-more"]')).toBeNull();
    expect(text('[data-testid="attempts-listed"]')).toBe('Every attempt recorded: 2, latest first.');
  });

  it('shows a disabled endpoint’s reason in full, and since when it failed', async () => {
    const reason =
      `disabled after failing for 24 h; last error: ${'connect ECONNREFUSED 127.0.0.1:9 '.repeat(5)}`.trim();
    const w = endpoint({
      enabled: false,
      disabledReason: reason,
      disabledAt: '2026-12-08T09:30:00.000Z',
      failingSince: '2026-12-07T09:30:00.000Z',
    });
    await open(w, [attempt({ outcome: 'network', statusCode: null, latencyMs: 3, error: 'connect ECONNREFUSED' })]);
    expect(root.querySelector('[data-testid="webhook-state"] .pill')?.getAttribute('data-status')).toBe('disabled');
    expect(text('[data-testid="webhook-state"]')).toMatch(/^disabled since /);
    expect(text('[data-testid="disabled-reason"]')).toBe(reason);
    expect(text('[data-testid="failing-since"]')).toMatch(/^Failing since .+: every attempt since then failed\.$/);
    const [row] = rows();
    expect(cell(row!, 'status')).toBe('—');
    expect(row!.classList).toContain('failure');
  });

  it('shows more attempts on demand, up to the most the API lists, and reads them again on Refresh', async () => {
    const w = endpoint();
    const many = (n: number) => Array.from({ length: n }, () => attempt());
    await open(w, many(ATTEMPTS_FIRST));
    root.querySelector<HTMLButtonElement>('[data-testid="attempts-more"]')!.click();
    const more = await answer(w, many(120));
    expect(more.request.params.get('limit')).toBe(String(ATTEMPTS_MOST));
    expect(rows()).toHaveLength(120);
    expect(root.querySelector('[data-testid="attempts-more"]')).toBeNull();

    // Refresh keeps the limit chosen, and shows the endpoint as it is now.
    root.querySelector<HTMLButtonElement>('[data-testid="attempts-refresh"]')!.click();
    const again = await answer({ ...w, failingSince: '2026-12-08T10:00:00.000Z' }, many(ATTEMPTS_MOST));
    expect(again.request.params.get('limit')).toBe(String(ATTEMPTS_MOST));
    expect(rows()).toHaveLength(ATTEMPTS_MOST);
    expect(text('[data-testid="attempts-listed"]')).toBe(`The latest ${ATTEMPTS_MOST} attempts, the most listed.`);
    expect(text('[data-testid="webhook-state"]')).toBe('failing');
  });

  it('says when nothing was tried yet', async () => {
    await open(endpoint(), []);
    expect(text('[data-testid="attempts-empty"]')).toBe('No attempt yet.');
  });

  it('starts again from the first attempts when the route opens another endpoint', async () => {
    const [a, b] = [endpoint(), endpoint()];
    await open(
      a,
      Array.from({ length: ATTEMPTS_FIRST }, () => attempt()),
    );
    root.querySelector<HTMLButtonElement>('[data-testid="attempts-more"]')!.click();
    await answer(a, [attempt()]);
    const call = await open(b, [attempt()]);
    expect(call.request.params.get('limit')).toBe(String(ATTEMPTS_FIRST));
    expect(text('[data-testid="webhook-url"]')).toBe(b.url);
  });

  it('shows the service’s message for an unknown endpoint', async () => {
    fixture.componentRef.setInput('id', 'nope');
    await fixture.whenStable();
    http
      .expectOne('/admin/api/webhooks/nope/attempts?limit=50')
      .flush(
        { error: { code: 'NOT_FOUND', message: 'no such webhook endpoint', requestId: 'r' } },
        { status: 404, statusText: 'Not Found' },
      );
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(text('[data-testid="webhook-error"]')).toBe('no such webhook endpoint');
    });
    expect(root.querySelector('[data-testid="attempts-table"]')).toBeNull();
  });
});
