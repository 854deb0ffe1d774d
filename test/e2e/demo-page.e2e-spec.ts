import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { HeraldClient, type StateFrame } from '../../libs/client/src';
import { request, userToken } from '../helpers/api';
import { JWT_PATTERN, launchChromium, recordUrls } from '../helpers/browser';
import { TestCluster } from '../helpers/cluster';
import { Edge, nginxRender } from '../helpers/edge';
import { repoRoot } from '../helpers/paths';
import { waitFor } from '../helpers/wait';

/** The demo end-user page in real headless Chromium, through Nginx, in front of two replicas. */
describe('Demo page in Chromium', () => {
  let cluster: TestCluster;
  let edge: Edge;
  let browser: Browser;
  let page: Page;
  let urls: string[] = [];
  /** The WebSocket handshakes Chromium made: the Sec-WebSocket-Protocol it sent and the one it got back. */
  const handshakes: { offered?: string; status?: number; named?: string }[] = [];
  const pageErrors: string[] = [];

  const publishTo = async (userId: string, event: string) => {
    const answer = await request<{ id: string }>(edge.http, 'POST', '/v1/notifications', {
      body: { to: { users: [userId] }, event, payload: { text: `${event} for ${userId}` } },
    });
    expect(answer.status).toBe(202);
    return answer.body.id;
  };
  const state = (tab = page) => tab.getAttribute('#state', 'data-state');
  /** The unread badge: `client.inbox`'s count. */
  const unread = (tab = page) => tab.textContent('#unread');
  /** Runs in the page; typed by hand, as the tests compile without the DOM library. */
  type Item = { getAttribute(name: string): string | null };
  const inboxIds = (tab = page) =>
    tab.$$eval('#inbox li', (items: Item[]) => items.map((li) => li.getAttribute('data-id') ?? ''));
  /** The list as a tab shows it: each item's id and whether it is read, newest first. */
  const inboxOf = (tab: Page) =>
    tab.$$eval('#inbox li', (items: Item[]) =>
      items.map((li) => `${li.getAttribute('data-id')}:${li.getAttribute('data-read')}`),
    );
  /** Opens the demo in `tab` and connects as `user`. */
  const connectAs = async (tab: Page, user: string) => {
    await tab.goto(`${edge.http}/demo/`);
    await tab.fill('#user', user);
    await tab.click('#connect');
    await waitFor('the page to connect', async () => (await state(tab)) === 'open', 15_000);
  };

  beforeAll(async () => {
    expect(existsSync(join(nginxRender.DEMO_ROOT, 'app.js'))).toBe(true);
    cluster = await TestCluster.start('demo', 2, { HERALD_DEMO_TOKENS: 'true', HERALD_TRUSTED_PROXIES: '127.0.0.1' });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    urls = recordUrls(page);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    const byRequest = new Map<string, (typeof handshakes)[number]>();
    const header = (headers: Record<string, string>, name: string) =>
      Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
    cdp.on('Network.webSocketWillSendHandshakeRequest', (event) => {
      const handshake = { offered: header(event.request.headers, 'sec-websocket-protocol') };
      byRequest.set(event.requestId, handshake);
      handshakes.push(handshake);
    });
    cdp.on('Network.webSocketHandshakeResponseReceived', (event) => {
      const handshake = byRequest.get(event.requestId);
      if (!handshake) return;
      handshake.status = event.response.status;
      handshake.named = header(event.response.headers, 'sec-websocket-protocol');
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
    await cluster?.stop();
  });

  it('receives a notification published over REST, survives a replica restart, and shows the one published while it was away', async () => {
    const user = `demo-${Date.now().toString(36)}`;
    await connectAs(page, user);

    const first = await publishTo(user, 'order.shipped');
    await waitFor('the first notification in the inbox', async () => (await inboxIds()).includes(first));
    await waitFor('the badge to count it', async () => (await unread()) === '1');
    expect(await page.textContent('.toast')).toContain('order.shipped');

    // Kill the replica holding the page's connection, then publish while the page is away.
    const detail = (await page.textContent('#detail')) ?? '';
    const holder = cluster.replicas.find((r) => detail.includes(`replica ${r.id}`));
    expect(holder).toBeDefined();
    await holder!.kill();
    await waitFor('the page to notice and count down', async () => (await state()) === 'reconnecting', 10_000);
    expect(await page.isVisible('#countdown')).toBe(true);
    expect(await page.textContent('#countdown')).toMatch(/next attempt in \d+\.\d s/);
    const away = await publishTo(user, 'while.away');
    await holder!.start();

    await waitFor('the page to reconnect by itself', async () => (await state()) === 'open', 20_000);
    await waitFor('the notification published while away', async () => (await inboxIds()).includes(away), 15_000);
    const ids = await inboxIds();
    // Each exactly once, newest first; the replayed one is not counted twice.
    expect(ids).toEqual([away, first]);
    await waitFor('the badge to count both', async () => (await unread()) === '2');
    // `HERALD_SCREENSHOTS=1 npm test` refreshes the picture in the README.
    if (process.env.HERALD_SCREENSHOTS)
      await page.screenshot({ path: join(repoRoot(), 'docs', 'images', 'demo-inbox.png') });
    await page.click('#mark-read');
    await waitFor('the badge to clear', async () => (await unread()) === '0');
    expect(pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION|Failed to load resource/.test(e))).toEqual([]);
  }, 90_000);

  it('keeps the unread count and the list the same in two tabs of one user, and after a reload', async () => {
    const user = `tabs-${Date.now().toString(36)}`;
    const context = await browser.newContext();
    const errors: string[] = [];
    try {
      const [a, b] = [await context.newPage(), await context.newPage()];
      for (const tab of [a, b]) tab.on('pageerror', (error) => errors.push(error.message));
      await Promise.all([connectAs(a, user), connectAs(b, user)]);
      const both = async (count: string) => (await unread(a)) === count && (await unread(b)) === count;
      await waitFor('both tabs to count nothing', () => both('0'));

      const ids = [await publishTo(user, 'tabs.0'), await publishTo(user, 'tabs.1'), await publishTo(user, 'tabs.2')];
      await waitFor('both tabs to count 3', () => both('3'));
      for (const tab of [a, b]) {
        await waitFor('the three in the list', async () => (await inboxIds(tab)).join() === [...ids].reverse().join());
      }

      // Read one in tab A (from the keyboard: a click waits for the toasts over the list to move away), and
      // tab B's list and badge follow (a state frame).
      await a.press(`#inbox li[data-id="${ids[1]}"]`, 'Enter');
      await waitFor("tab B's count to drop", async () => (await unread(b)) === '2', 5000);
      await waitFor('tab B to show it read', async () => (await inboxOf(b)).includes(`${ids[1]}:true`), 5000);
      await waitFor('both tabs to count 2', () => both('2'));

      // Mark all read in tab B: both clear.
      await b.click('#mark-read');
      await waitFor('both tabs to count 0', () => both('0'), 5000);
      await waitFor('tab A to show all read', async () => (await inboxOf(a)).every((item) => item.endsWith(':true')));

      // One more, then reload tab B: it connects again by itself and shows what tab A shows.
      const later = await publishTo(user, 'tabs.later');
      await waitFor('both tabs to count 1', () => both('1'));
      await waitFor('tab A to list it', async () => (await inboxIds(a)).includes(later));
      const listOfA = await inboxOf(a);
      await b.reload();
      await waitFor('tab B to connect again', async () => (await state(b)) === 'open', 15_000);
      await waitFor('tab B to show the same count and list', async () => {
        return (await unread(b)) === '1' && (await inboxOf(b)).join() === listOfA.join();
      });
      expect(listOfA).toEqual([`${later}:false`, ...[...ids].reverse().map((id) => `${id}:true`)]);
    } finally {
      await context.close();
    }
    expect(errors).toEqual([]);
  }, 60_000);

  it('streams Server-Sent Events through Nginx as they happen (no proxy buffering), acks over POST, and logs no token', async () => {
    const user = `sse-${Date.now().toString(36)}`;
    const token = userToken(user);
    const client = new HeraldClient({ url: edge.ws, token, transport: 'sse' });
    const received: string[] = [];
    client.onNotification((n) => {
      received.push(n.id);
    });
    const opened = new Promise<void>((resolve) => client.on('open', () => resolve()));
    client.connect();
    try {
      await opened;
      for (let i = 0; i < 3; i++) {
        const id = await publishTo(user, `sse.${i}`);
        // Each one arrives on its own: a buffering proxy would hold them back.
        await waitFor(`sse.${i} through Nginx`, () => received.includes(id), 3000, 20);
      }
      await waitFor('acked through Nginx', async () => {
        const rows = await cluster.db.query<{ status: string }>('SELECT status FROM deliveries WHERE user_id = $1', [
          user,
        ]);
        return rows.length === 3 && rows.every((r) => r.status === 'acked');
      });
    } finally {
      client.close();
    }
    // Nginx logs a stream when it ends, a moment after the client closed it.
    await waitFor('the stream in the access log', () => edge.accessLog().includes('GET /v1/stream'));
    expect(edge.accessLog() + edge.errorLog()).not.toContain(token);
  });

  it('keeps client.inbox in step over SSE too: actions by REST, state events on the stream, refusals named', async () => {
    const user = `sse-inbox-${Date.now().toString(36)}`;
    const client = new HeraldClient({ url: edge.ws, token: userToken(user), transport: 'sse', inbox: true });
    const changes: StateFrame[] = [];
    client.inbox.on('change', (change) => changes.push(change));
    const opened = new Promise<void>((resolve) => client.on('open', () => resolve()));
    client.connect();
    try {
      await opened;
      expect(client.connection?.features).toContain('inbox');
      await waitFor('the count fetched at the welcome', () => client.inbox.unreadCount === 0);
      const first = await publishTo(user, 'sse.inbox.0');
      await publishTo(user, 'sse.inbox.1');
      await waitFor('both counted as they arrive', () => client.inbox.unreadCount === 2);
      await client.inbox.markRead([first]);
      await waitFor('the state event on the stream', () => changes.some((c) => c.action === 'read'));
      expect(changes).toEqual([{ type: 'state', action: 'read', ids: [first], unreadCount: 1 }]);
      expect(client.inbox.unreadCount).toBe(1);
      const stranger = randomUUID();
      await expect(client.inbox.archive([first, stranger])).rejects.toMatchObject({
        code: 'FORBIDDEN',
        ids: [stranger],
      });
      expect((await client.inbox.list({ archived: true })).items.map((item) => item.id)).toEqual([first]);
    } finally {
      client.close();
    }
  });

  it('says so when demo tokens are off, instead of retrying forever', async () => {
    // The token endpoint answers 404 on a replica without HERALD_DEMO_TOKENS.
    const off = await TestCluster.start('demo-off', 1);
    const offEdge = await Edge.start([off.replicas[0]!.port]);
    try {
      const other = await browser.newPage();
      await other.goto(`${offEdge.http}/demo/`);
      await other.click('#connect');
      await other.waitForSelector('#login-error:not([hidden])', { timeout: 10_000 });
      expect(await other.textContent('#login-error')).toContain('HERALD_DEMO_TOKENS=true');
      await waitFor('the page to stop', async () => (await other.getAttribute('#state', 'data-state')) === 'closed');
      await other.close();
    } finally {
      await offEdge.stop();
      await off.stop();
    }
  }, 60_000);

  it('never puts a token in a URL: the WebSocket carries it in Sec-WebSocket-Protocol, one request per connect', () => {
    const sockets = urls.filter((url) => url.startsWith('ws'));
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    // Only the feature the demo asks for (its inbox) rides in the URL.
    for (const url of sockets) expect(new URL(url).search).toBe('?features=inbox');
    expect(urls.some((url) => url.endsWith('/v1/tickets'))).toBe(false);
    expect(urls.filter((url) => JWT_PATTERN.test(url) || /[?&]token=/.test(url))).toEqual([]);
    // What Chromium itself sent and got back: the token offered after herald.v1, only herald.v1 named.
    expect(handshakes.length).toBe(sockets.length);
    for (const { offered } of handshakes) {
      expect(offered).toMatch(/^herald\.v1, herald\.bearer\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    }
    const opened = handshakes.filter((h) => h.status === 101);
    expect(opened.length).toBeGreaterThanOrEqual(2);
    for (const { named } of opened) expect(named).toBe('herald.v1');
  });
});
