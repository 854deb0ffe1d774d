import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import type { AdminWebhooksResponse } from '@herald/protocol';
import { attempt, endpoint } from './webhook-test-data';
import { Webhooks } from './webhooks';

describe('Webhooks', () => {
  let fixture: ComponentFixture<Webhooks>;
  let root: HTMLElement;
  let http: HttpTestingController;

  beforeEach(async () => {
    TestBed.configureTestingModule({
      imports: [Webhooks],
      providers: [provideZonelessChangeDetection(), provideHttpClient(), provideHttpClientTesting(), provideRouter([])],
    });
    http = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(Webhooks);
    root = fixture.nativeElement as HTMLElement;
    await fixture.whenStable();
  });

  afterEach(() => http.verify());

  const text = (selector: string, within: ParentNode = root) =>
    within.querySelector(selector)?.textContent?.replace(/\s+/g, ' ').trim();
  const rows = () => [...root.querySelectorAll<HTMLTableRowElement>('[data-testid="webhooks-table"] tbody tr')];

  /** Answers the list's read, and waits until the answer is shown (vi.waitFor's deadline). */
  async function answer(body: AdminWebhooksResponse): Promise<void> {
    http.expectOne('/admin/api/webhooks').flush(body);
    await settled();
  }

  async function settled(): Promise<void> {
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(
        root.querySelector('[data-testid="webhooks-table"], [data-testid="webhooks-empty"], [role="alert"]'),
      ).not.toBeNull();
    });
  }

  it('lists each endpoint with its publisher, URL, events, pending messages, last hour and last attempt', async () => {
    const healthy = endpoint({
      publisherId: 'orders',
      url: 'https://orders.example.com/herald',
      events: ['notification.acked', 'notification.failed'],
      description: 'order service',
      pendingMessages: 3,
      attemptsLastHour: 40,
      failuresLastHour: 0,
      lastAttempt: attempt({ outcome: 'ok', statusCode: 204, latencyMs: 31 }),
    });
    const fresh = endpoint({ publisherId: 'billing' });
    await answer({ items: [healthy, fresh] });
    const [first, second] = rows();
    expect(rows().map((r) => r.dataset['id'])).toEqual([healthy.id, fresh.id]);
    expect(text('[data-field="publisher"]', first)).toBe('orders');
    expect(text('[data-field="url"]', first)).toContain('https://orders.example.com/herald');
    expect(text('[data-field="url"]', first)).toContain('order service');
    expect([...first!.querySelectorAll('[data-field="events"] div')].map((e) => e.textContent)).toEqual([
      'notification.acked',
      'notification.failed',
    ]);
    expect(text('[data-field="state"]', first)).toBe('enabled');
    expect(text('[data-field="pending"]', first)).toBe('3');
    expect([...first!.querySelectorAll('[data-field="last-hour"] div')].map((e) => e.textContent?.trim())).toEqual([
      '40 attempts',
      '0 failed',
    ]);
    expect(text('[data-field="last-attempt"]', first)).toMatch(/^ok 204 · 31 ms/);
    expect(first!.querySelector('[data-field="last-attempt"] time')?.getAttribute('datetime')).toBe(
      healthy.lastAttempt!.at,
    );
    expect(first!.classList).not.toContain('failure');
    expect(first!.querySelector('[data-field="last-attempt"] .error')).toBeNull();
    expect(text('[data-field="last-attempt"]', second)).toBe('none yet');
    // Each row opens its endpoint.
    expect(first!.querySelector('a')?.getAttribute('href')).toBe(`/webhooks/${healthy.id}`);
  });

  it('marks a failing endpoint and a disabled one, with the disabled reason in full', async () => {
    const reason = `disabled after failing for 24 h; last error: HTTP 500: ${'upstream exploded '.repeat(8)}`.trim();
    const failing = endpoint({
      failingSince: '2026-12-08T08:00:00.000Z',
      attemptsLastHour: 5,
      failuresLastHour: 5,
      pendingMessages: 2,
      lastAttempt: attempt({ outcome: 'http', statusCode: 500, latencyMs: 8, error: 'HTTP 500' }),
    });
    const disabled = endpoint({
      enabled: false,
      disabledReason: reason,
      disabledAt: '2026-12-08T09:30:00.000Z',
      failingSince: '2026-12-07T09:30:00.000Z',
      lastAttempt: attempt({ outcome: 'timeout', statusCode: null, latencyMs: 10_000, error: 'no answer in 10 s' }),
    });
    await answer({ items: [failing, disabled] });
    const [f, d] = rows();
    expect(f!.classList).toContain('failure');
    expect(f!.querySelector('.pill')?.getAttribute('data-status')).toBe('failing');
    expect(text('[data-testid="failing-since"]', f)).toMatch(/^failing since /);
    expect(f!.querySelector('[data-testid="failing-since"] time')?.getAttribute('datetime')).toBe(
      '2026-12-08T08:00:00.000Z',
    );
    expect(f!.querySelector('[data-testid="disabled-reason"]')).toBeNull();
    expect(f!.querySelector('[data-field="last-hour"] .error')?.textContent).toBe('5 failed');
    expect(text('[data-field="last-attempt"]', f)).toMatch(/^http 500 · 8 ms/);
    expect(f!.querySelector('[data-field="last-attempt"] .error')).not.toBeNull();

    expect(d!.classList).toContain('failure');
    expect(d!.querySelector('.pill')?.getAttribute('data-status')).toBe('disabled');
    // The whole reason, not a clipped one.
    expect(text('[data-testid="disabled-reason"]', d)).toBe(reason);
    expect(d!.querySelector('[data-testid="disabled-reason"]')?.classList).toContain('error');
    expect(text('[data-field="last-attempt"]', d)).toMatch(/^timeout · 10000 ms/);
  });

  it('says how endpoints are registered when there are none', async () => {
    await answer({ items: [] });
    expect(text('[data-testid="webhooks-empty"]')).toBe(
      'No webhook endpoints. Publishers register them with POST /v1/webhooks (docs/webhooks.md).',
    );
    expect(root.querySelector('[data-testid="webhooks-table"]')).toBeNull();
  });

  it('reads the list again on Refresh', async () => {
    await answer({ items: [] });
    root.querySelector<HTMLButtonElement>('[data-testid="webhooks-refresh"]')!.click();
    const added = endpoint();
    http.expectOne('/admin/api/webhooks').flush({ items: [added] });
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(rows().map((r) => r.dataset['id'])).toEqual([added.id]);
    });
  });

  it('shows the service’s message when it refuses', async () => {
    http
      .expectOne('/admin/api/webhooks')
      .flush(
        { error: { code: 'UNAVAILABLE', message: 'the admin API is off', requestId: 'r' } },
        { status: 503, statusText: 'Service Unavailable' },
      );
    await settled();
    expect(text('[data-testid="webhooks-error"]')).toBe('the admin API is off');
    expect(root.querySelector('[data-testid="webhooks-empty"]')).toBeNull();
  });
});
