import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { InboxStateResponse, TokenResponse, WebhookEndpointCreated } from '@herald/protocol';
import { publish, request, userToken } from '../helpers/api';
import { JWT_PATTERN, launchChromium, recordUrls } from '../helpers/browser';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { repoRoot } from '../helpers/paths';
import { TEST_ADMIN_PASSWORD } from '../helpers/replica';
import { holdFor, waitFor } from '../helpers/wait';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { TestClient } from '../helpers/ws-client';

const CONSOLE_ROOT = join(repoRoot(), 'dist', 'admin', 'browser');

/** The admin console in real headless Chromium, built and served by Nginx in front of two replicas. */
describe('Admin console in Chromium', () => {
  let cluster: TestCluster;
  let edge: Edge;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Every URL the console and the reader page request, and every WebSocket they open, per page. */
  const urlLists: string[][] = [];
  const pageErrors: string[] = [];
  /** The user whose inbox the inbox test filled, for the phone test to show it too. */
  let inboxUser: string | undefined;
  /** The webhook endpoint the webhooks test registered, for the phone test to show it too. */
  let webhookId: string | undefined;
  let receiver: WebhookReceiver | undefined;
  const shot = async (name: string, target: Page = page) => {
    // `HERALD_SCREENSHOTS=1 npm test` refreshes the pictures in the README.
    if (process.env.HERALD_SCREENSHOTS) {
      await target.screenshot({ path: join(repoRoot(), 'docs', 'images', `${name}.png`), fullPage: true });
    }
  };

  beforeAll(async () => {
    expect(existsSync(join(CONSOLE_ROOT, 'index.html'))).toBe(true);
    cluster = await TestCluster.start('console', 2, {
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_DEMO_TOKENS: 'true',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      // The webhooks test's receiver listens on 127.0.0.1, which the guard refuses unless allowed.
      HERALD_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      HERALD_WEBHOOK_RETRY_MS: '300',
    });
    edge = await Edge.start(
      cluster.replicas.map((r) => r.port),
      { adminRoot: CONSOLE_ROOT },
    );
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    urlLists.push(recordUrls(page));
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
    await cluster?.stop();
    await receiver?.stop();
  });

  it('refuses a wrong password, then logs in and shows the live overview', async () => {
    await page.goto(`${edge.http}/admin/`);
    await page.waitForSelector('#password');
    await page.fill('#password', 'not the password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="login-error"]');
    expect(await page.textContent('[data-testid="login-error"]')).toContain('wrong password');
    await shot('console-login');
    await page.fill('#password', TEST_ADMIN_PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="stat-connections"]');
    await waitFor('the live stream', async () => (await page.textContent('[data-testid="live-status"]')) === 'live');
  });

  it('shows a user connecting and leaving, without a reload', async () => {
    await page.click('a[href="/admin/connections"]');
    await page.waitForSelector('[data-testid="connections-empty"], [data-testid="connections-table"]');
    const user = `console-${Date.now().toString(36)}`;
    // The user subscribed to a topic earlier (subscriptions belong to the user).
    const earlier = await TestClient.connect(edge.ws, userToken(user));
    await earlier.command({ type: 'subscribe', channel: 'news', id: 's1' });
    await earlier.close();
    await page.waitForSelector(`tr[data-user="${user}"]`, { state: 'detached', timeout: 10_000 });
    const client = await TestClient.connect(edge.ws, userToken(user));
    const row = `tr[data-user="${user}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    expect(await page.textContent(row)).toContain('console-r');
    // Its topics are filled in after the event, without a reload.
    await waitFor('the topic in the row', async () => ((await page.textContent(row)) ?? '').includes('news'));
    await shot('console-connections');
    await client.close();
    await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
  });

  it('sends a broadcast that reaches a real browser page, follows it to acked, and shows its timeline', async () => {
    // A real end user: the demo page, in its own browser context.
    const user = `reader-${Date.now().toString(36)}`;
    const reader = await (await browser.newContext()).newPage();
    urlLists.push(recordUrls(reader));
    await reader.goto(`${edge.http}/demo/`);
    await reader.fill('#user', user);
    await reader.click('#connect');
    await waitFor('the reader to connect', async () => (await reader.getAttribute('#state', 'data-state')) === 'open');

    await page.click('a[href="/admin/broadcast"]');
    await page.check('input[value="users"]');
    await page.fill('#users', user);
    await page.fill('#event', 'console.hello');
    await page.fill('#payload', '{"text": "Hello from the console"');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="payload-error"]');
    expect(await page.textContent('[data-testid="payload-error"]')).toMatch(/^Not valid JSON/);
    await page.fill('#payload', '{"text": "Hello from the console"}');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="confirm-recipients"]');
    expect(await page.textContent('[data-testid="confirm-recipients"]')).toContain('1 user');
    await page.click('section.confirm button:has-text("Send")');
    await page.waitForSelector('[data-testid="broadcast-progress"]');
    await waitFor(
      'the progress to reach acked',
      async () => (await page.textContent('[data-testid="progress-acked"]')) === '1',
      15_000,
    );
    await waitFor('the reader to show it', async () =>
      ((await reader.textContent('#inbox')) ?? '').includes('console.hello'),
    );
    await shot('console-broadcast');

    await page.click('[data-testid="broadcast-progress"] a');
    await page.waitForSelector(`[data-testid="timeline"] li[data-user="${user}"]`);
    const timeline = (await page.textContent(`[data-testid="timeline"] li[data-user="${user}"]`)) ?? '';
    for (const step of ['stored', 'first sent', 'acked']) expect(timeline).toContain(step);
    await shot('console-notification');

    await page.click('a[href="/admin/notifications"]');
    await page.fill('input[name="userId"]', user);
    await page.click('form button[type="submit"]');
    await waitFor('the history row', async () =>
      ((await page.textContent('[data-testid="notifications-table"]').catch(() => '')) ?? '').includes('console.hello'),
    );
    // Angular keeps the template's line breaks as spaces: compare the text with its whitespace collapsed.
    expect(((await page.textContent('[data-testid="history-reach"]')) ?? '').replace(/\s+/g, ' ')).toMatch(
      /History reaches back to .+; each is kept 168 h after it is final\./,
    );
    await shot('console-notifications');

    // The overview now has something to show: the reader online, a notification this minute, an ack latency.
    await page.click('a[href="/admin/overview"]');
    // "This minute" is the clock's minute: one that began since the broadcast (a slow run) gets a notification of
    // its own, so the counter is tested, not the clock.
    let publishedInMinute = -1;
    await waitFor(
      'the overview counters',
      async () => {
        const minute = Math.floor(Date.now() / 60_000);
        if (minute !== publishedInMinute) {
          publishedInMinute = minute;
          await publish(edge.http, { to: { users: [user] }, event: 'console.minute' });
        }
        return Number(await page.textContent('[data-testid="stat-per-minute"]')) >= 1;
      },
      20_000,
    );
    expect(Number(await page.textContent('[data-testid="stat-connections"]'))).toBeGreaterThanOrEqual(1);
    await shot('console-overview');
    await reader.close();
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("follows a delivery of the timeline to its user's inbox: what they have and what they read", async () => {
    const user = `inbox-${Date.now().toString(36)}`;
    // The customer's backend mints the user's token with its API key; the user reads one of two items.
    const minted = await request<TokenResponse>(edge.http, 'POST', '/v1/tokens', {
      body: { userId: user, ttlSeconds: 600 },
    });
    expect(minted.status).toBe(201);
    const kept = await publish(edge.http, { to: { users: [user] }, event: 'console.inbox.kept', payload: { n: 1 } });
    const read = await publish(edge.http, { to: { users: [user] }, event: 'console.inbox.read', payload: { n: 2 } });
    const marked = await request<InboxStateResponse>(edge.http, 'POST', '/v1/me/read', {
      apiKey: null,
      headers: { authorization: `Bearer ${minted.body.token}` },
      body: { ids: [read.id] },
    });
    expect(marked.status).toBe(200);
    expect(marked.body).toEqual({ results: [{ id: read.id, status: 'ok' }], unreadCount: 1 });

    // The notification's timeline, from the history.
    await page.click('a[href="/admin/notifications"]');
    await page.fill('input[name="userId"]', user);
    await page.fill('input[name="event"]', 'console.inbox.read');
    await page.click('form button[type="submit"]');
    await page.waitForSelector(`[data-testid="notifications-table"] tr[data-id="${read.id}"]`);
    await page.click(`tr[data-id="${read.id}"] a >> nth=0`);
    const delivery = `[data-testid="timeline"] li[data-user="${user}"]`;
    await page.waitForSelector(delivery);

    // Its user, one click away: their inbox, newest first, with the item read and the count right.
    await page.click(`${delivery} [data-testid="delivery-user"]`);
    await page.waitForSelector(`[data-testid="inbox-table"] tr[data-id="${read.id}"]`);
    expect(new URL(page.url()).pathname).toBe(`/admin/inbox/${user}`);
    expect(await page.textContent('[data-testid="inbox-unread"]')).toBe('1');
    const rows = await Promise.all(
      (await page.locator('[data-testid="inbox-table"] tbody tr').all()).map(async (tr) => ({
        id: await tr.getAttribute('data-id'),
        focus: ((await tr.getAttribute('class')) ?? '').split(/\s+/).includes('focus'),
        state: await Promise.all(
          ['seen', 'read', 'archived'].map((f) => tr.locator(`[data-field="${f}"]`).textContent()),
        ),
      })),
    );
    expect(rows).toEqual([
      { id: read.id, focus: true, state: ['yes', 'yes', 'no'] },
      { id: kept.id, focus: false, state: ['no', 'no', 'no'] },
    ]);
    expect(await page.textContent('[data-testid="inbox-retention"]')).toMatch(/listed for 30 days from publish/);
    await shot('console-inbox');

    // Unread only: the item read leaves the list, the count stays.
    await page.check('input[formControlName="unread"]');
    await page.waitForSelector(`[data-testid="inbox-table"] tr[data-id="${read.id}"]`, { state: 'detached' });
    // The filtered page replaces the list: wait for its row, not only for the read one to go.
    await page.waitForSelector(`[data-testid="inbox-table"] tr[data-id="${kept.id}"]`);
    expect(await page.locator('[data-testid="inbox-table"] tbody tr').count()).toBe(1);
    expect(await page.textContent('[data-testid="inbox-unread"]')).toBe('1');
    inboxUser = user;
    expect(pageErrors).toEqual([]);
  });

  it("lists a publisher's webhook endpoint and its attempts: a receiver's 500 is a failed attempt with its status", async () => {
    receiver = await WebhookReceiver.start();
    receiver.answer('/console-hooks', () => ({ status: 500 }));
    const created = await request<WebhookEndpointCreated>(edge.http, 'POST', '/v1/webhooks', {
      body: { url: receiver.url('/console-hooks'), events: ['notification.acked'], description: 'console test' },
    });
    expect(created.status).toBe(201);
    const endpoint = created.body;
    webhookId = endpoint.id;
    // Every replica reads the endpoints again within a second (ADR 0027).
    await holdFor('both replicas to read the new endpoint', 1200);
    // A user acks a notification: Herald tells the endpoint, which answers 500.
    const user = `hooked-${Date.now().toString(36)}`;
    const client = await TestClient.connect(edge.ws, userToken(user), { autoAck: true });
    await publish(edge.http, { to: { users: [user] }, event: 'console.webhook' });
    await waitFor('the receiver to be asked', () => receiver!.on('/console-hooks').length > 0, 15_000);
    await client.close();

    await page.click('a[href="/admin/webhooks"]');
    const row = `[data-testid="webhooks-table"] tr[data-id="${endpoint.id}"]`;
    // The list is read when opened: Refresh until the failed attempt is recorded and shown.
    await waitFor('the endpoint failing, with its last attempt', async () => {
      if (!(await page.$(row))) return false;
      const lastAttempt = (await page.textContent(`${row} [data-field="last-attempt"]`)) ?? '';
      if (/http\s+500/.test(lastAttempt)) return true;
      await page.click('[data-testid="webhooks-refresh"]');
      return false;
    });
    expect(await page.textContent(`${row} [data-field="publisher"]`)).toBeTruthy();
    expect(await page.textContent(`${row} [data-field="url"]`)).toContain(endpoint.url);
    expect(await page.textContent(`${row} [data-field="events"]`)).toBe('notification.acked');
    expect(await page.getAttribute(row, 'class')).toContain('failure');

    await page.click(`${row} a`);
    await page.waitForSelector('[data-testid="attempts-table"]');
    expect(new URL(page.url()).pathname).toBe(`/admin/webhooks/${endpoint.id}`);
    expect(await page.textContent('[data-testid="webhook-url"]')).toBe(endpoint.url);
    const attempt = '[data-testid="attempts-table"] tbody tr >> nth=-1';
    expect(await page.textContent(`${attempt} >> [data-field="type"]`)).toBe('notification.acked');
    expect(await page.textContent(`${attempt} >> [data-field="attempt"]`)).toBe('1');
    expect((await page.textContent(`${attempt} >> [data-field="outcome"]`))?.trim()).toBe('http');
    expect(await page.textContent(`${attempt} >> [data-field="status"]`)).toBe('500');
    expect(Number(await page.textContent(`${attempt} >> [data-field="latency"]`))).toBeGreaterThanOrEqual(0);
    expect(await page.getAttribute(attempt, 'class')).toContain('failure');
    // Retried after the 500 (HERALD_WEBHOOK_RETRY_MS): Refresh shows the next try, with the same webhook-id.
    await waitFor(
      'a retry in the list',
      async () => {
        if ((await page.locator('[data-testid="attempts-table"] tbody tr').count()) >= 2) return true;
        await page.click('[data-testid="attempts-refresh"]');
        return false;
      },
      15_000,
      300,
    );
    const rows = await page.locator('[data-testid="attempts-table"] tbody tr').all();
    const messages = await Promise.all(rows.map((tr) => tr.getAttribute('data-message')));
    expect(new Set(messages).size).toBe(1);
    await shot('console-webhooks');
    expect(pageErrors).toEqual([]);
  });

  it('never puts the admin session or a user token in a URL: the event stream opens with one-time tickets', () => {
    const urls = urlLists.flat();
    const streams = urls.filter((url) => url.includes('/admin/api/events'));
    expect(streams.length).toBeGreaterThanOrEqual(1);
    for (const url of streams) expect(new URL(url).searchParams.get('ticket')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(urls.filter((url) => JWT_PATTERN.test(url) || /[?&]token=/.test(url))).toEqual([]);
  });

  it('fits a phone screen', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${edge.http}/admin/login`);
    await small.fill('#password', TEST_ADMIN_PASSWORD);
    await small.click('button[type="submit"]');
    await small.waitForSelector('[data-testid="stat-connections"]');
    // Nothing wider than the screen but the tables, which scroll inside their own box.
    const overflow = await small.evaluate('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('console-phone', small);
    // A user's inbox too, with its filters, its summary and its table.
    if (inboxUser) {
      await small.click('a[href="/admin/inbox"]');
      await small.fill('[data-testid="inbox-user-input"]', inboxUser);
      await small.click('form[aria-label="User"] button[type="submit"]');
      await small.waitForSelector('[data-testid="inbox-table"]');
      expect(await small.evaluate('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
    }
    // The webhooks list and an endpoint's page, with its attempts.
    if (webhookId) {
      await small.click('a[href="/admin/webhooks"]');
      await small.click(`[data-testid="webhooks-table"] tr[data-id="${webhookId}"] a`);
      await small.waitForSelector('[data-testid="attempts-table"]');
      expect(await small.evaluate('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
    }
    await phone.close();
  });
});
