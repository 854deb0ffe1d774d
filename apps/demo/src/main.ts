/**
 * The demo end-user page: an inbox built on @herald/client and its `client.inbox`. It mints a token through
 * the demo-only endpoint (POST /v1/demo/tokens, off unless HERALD_DEMO_TOKENS=true), connects, lists the
 * user's inbox from the server, and keeps it and the unread badge in step with every other tab or device of
 * the user (state frames). The user id is kept for the tab, so a reload connects again by itself.
 */
import { applyInboxChange, HeraldClient, type InboxItem, type Notification } from '@herald/client';

const TOAST_MS = 5000;
const PAGE_SIZE = 20;
/** The tab's user (sessionStorage): a reload connects as them again. */
const USER_KEY = 'herald-demo-user';

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

const ui = {
  form: element<HTMLFormElement>('login'),
  user: element<HTMLInputElement>('user'),
  connect: element<HTMLButtonElement>('connect'),
  disconnect: element<HTMLButtonElement>('disconnect'),
  loginError: element<HTMLParagraphElement>('login-error'),
  state: element<HTMLSpanElement>('state'),
  detail: element<HTMLSpanElement>('detail'),
  countdown: element<HTMLSpanElement>('countdown'),
  unread: element<HTMLSpanElement>('unread'),
  markRead: element<HTMLButtonElement>('mark-read'),
  inboxError: element<HTMLParagraphElement>('inbox-error'),
  empty: element<HTMLParagraphElement>('empty'),
  inbox: element<HTMLOListElement>('inbox'),
  more: element<HTMLButtonElement>('more'),
  toasts: element<HTMLDivElement>('toasts'),
};

let client: HeraldClient | null = null;
/** The items shown, newest (highest seq) first: the server's pages, plus what arrived live. */
let items: InboxItem[] = [];
/** Where the next (older) page starts; null when the last page is shown. */
let nextCursor: string | null = null;
let countdownTimer: ReturnType<typeof setInterval> | undefined;

/** A token for `userId` from the demo endpoint; the client calls it again whenever it needs a fresh one. */
async function mintToken(userId: string): Promise<string> {
  const response = await fetch('/v1/demo/tokens', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  const body = (await response.json().catch(() => ({}))) as { token?: string; error?: { message?: string } };
  if (!response.ok || !body.token) {
    throw new Error(body.error?.message ?? `the token endpoint answered ${response.status}`);
  }
  return body.token;
}

function setState(state: 'connecting' | 'open' | 'reconnecting' | 'closed', detail = ''): void {
  ui.state.dataset.state = state;
  ui.state.textContent = state;
  ui.detail.textContent = detail;
  if (state !== 'reconnecting') stopCountdown();
}

function startCountdown(delayMs: number): void {
  stopCountdown();
  const until = Date.now() + delayMs;
  const show = () => {
    const left = Math.max(0, until - Date.now());
    ui.countdown.textContent = `next attempt in ${(left / 1000).toFixed(1)} s`;
    if (left === 0) stopCountdown();
  };
  ui.countdown.hidden = false;
  show();
  countdownTimer = setInterval(show, 100);
}

function stopCountdown(): void {
  clearInterval(countdownTimer);
  countdownTimer = undefined;
  ui.countdown.hidden = true;
}

/** The unread badge: `client.inbox`'s count, the same in every tab of the user. */
function showUnread(count: number | null): void {
  ui.unread.textContent = count === null ? '…' : String(count);
  ui.unread.dataset.count = String(count ?? 0);
  ui.markRead.disabled = !count;
}

function showError(message: string | null): void {
  ui.inboxError.textContent = message ?? '';
  ui.inboxError.hidden = message === null;
}

/** Keeps `incoming` (newer state wins), the items not in it, newest first, each id once. */
function merge(incoming: readonly InboxItem[]): void {
  const byId = new Map(items.map((item) => [item.id, item]));
  for (const item of incoming) byId.set(item.id, item);
  items = [...byId.values()].filter((item) => !item.archived).sort((a, b) => b.seq - a.seq);
  render();
}

function render(): void {
  ui.empty.hidden = items.length > 0;
  ui.more.hidden = nextCursor === null;
  ui.inbox.replaceChildren(...items.map(itemElement));
}

function itemElement(item: InboxItem): HTMLLIElement {
  const li = document.createElement('li');
  li.className = item.read ? 'read' : 'unread';
  li.tabIndex = 0;
  li.dataset.id = item.id;
  li.dataset.seq = String(item.seq);
  li.dataset.read = String(item.read);
  li.title = item.read ? '' : 'Click to mark read';
  const event = document.createElement('div');
  event.className = 'event';
  event.textContent = item.event;
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = `#${item.seq} · ${new Date(item.timestamp).toLocaleTimeString()}${
    item.topic ? ` · topic ${item.topic}` : ''
  }`;
  const payload = document.createElement('pre');
  payload.textContent = JSON.stringify(item.payload, null, 2);
  li.append(event, meta, payload);
  const markRead = () => {
    if (!item.read) act((inbox) => inbox.markRead([item.id]));
  };
  li.addEventListener('click', markRead);
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') markRead();
  });
  return li;
}

/** Runs an inbox action; the server's `state` frame updates this tab and every other one. */
function act(action: (inbox: HeraldClient['inbox']) => Promise<unknown>): void {
  if (!client) return;
  showError(null);
  action(client.inbox).catch((error: unknown) => showError(error instanceof Error ? error.message : String(error)));
}

/** The first page from the server (after every connect: what changed while away is in it). */
async function loadFirstPage(from: HeraldClient): Promise<void> {
  try {
    const page = await from.inbox.list({ limit: PAGE_SIZE });
    if (client !== from) return;
    // Items newer than the page arrived live while it loaded: they stay; older ones are the page's now.
    const newest = page.items[0]?.seq ?? 0;
    items = items.filter((item) => item.seq > newest && !page.items.some((p) => p.id === item.id));
    nextCursor = page.nextCursor;
    merge(page.items);
  } catch (error) {
    if (client === from) showError(`inbox not loaded: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function loadMore(): Promise<void> {
  const from = client;
  if (!from || nextCursor === null) return;
  ui.more.disabled = true;
  try {
    const page = await from.inbox.list({ limit: PAGE_SIZE, cursor: nextCursor });
    if (client !== from) return;
    nextCursor = page.nextCursor;
    merge(page.items);
  } catch (error) {
    showError(error instanceof Error ? error.message : String(error));
  } finally {
    ui.more.disabled = false;
  }
}

function arrived(notification: Notification): void {
  const { id, seq, event, payload, timestamp, topic } = notification;
  if (!items.some((item) => item.id === id)) {
    merge([
      { id, seq, event, payload, timestamp, seen: false, read: false, archived: false, ...(topic ? { topic } : {}) },
    ]);
  }
  toast(notification);
}

function toast(notification: Notification): void {
  const box = document.createElement('div');
  box.className = 'toast';
  box.setAttribute('role', 'status');
  box.textContent = `New: ${notification.event}`;
  ui.toasts.append(box);
  setTimeout(() => box.remove(), TOAST_MS);
}

function disconnect(): void {
  client?.close();
  client = null;
  sessionStorage.removeItem(USER_KEY);
}

function connect(userId: string): void {
  disconnect();
  items = [];
  nextCursor = null;
  render();
  showUnread(null);
  showError(null);
  ui.loginError.hidden = true;
  sessionStorage.setItem(USER_KEY, userId);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const next = new HeraldClient({
    url: `${scheme}//${location.host}/ws`,
    getToken: () => mintToken(userId),
    inbox: true,
  });
  client = next;
  next.on('connecting', ({ transport }) => setState('connecting', `over ${transport}`));
  next.on('open', ({ transport, replicaId }) => {
    setState('open', `as ${userId} over ${transport}, replica ${replicaId}`);
    void loadFirstPage(next);
  });
  next.on('reconnecting', ({ delayMs, code, reason }) => {
    setState('reconnecting', `connection lost (${code}${reason ? `: ${reason}` : ''})`);
    startCountdown(delayMs);
  });
  next.on('closed', ({ code, reason }) => {
    setState('closed', `${code}${reason ? `: ${reason}` : ''}`);
    ui.connect.disabled = false;
    ui.disconnect.disabled = true;
  });
  next.on('error', ({ message }) => {
    if (/getToken failed/.test(message)) {
      ui.loginError.textContent = message.replace(/^getToken failed: /, '');
      ui.loginError.hidden = false;
      // Demo tokens switched off: retrying cannot help.
      if (/HERALD_DEMO_TOKENS/.test(message)) disconnect();
    }
  });
  next.onNotification(arrived);
  next.inbox.onUnreadCount(showUnread);
  // Read on another tab or device (or this one): the same change here.
  next.inbox.on('change', (change) => merge(items.map((item) => applyInboxChange(item, change))));
  ui.connect.disabled = true;
  ui.disconnect.disabled = false;
  next.connect();
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!ui.form.reportValidity()) return;
  connect(ui.user.value.trim());
});
ui.disconnect.addEventListener('click', disconnect);
ui.markRead.addEventListener('click', () => act((inbox) => inbox.markAllRead()));
ui.more.addEventListener('click', () => void loadMore());
render();
showUnread(0);
const remembered = sessionStorage.getItem(USER_KEY);
if (remembered) {
  ui.user.value = remembered;
  connect(remembered);
}
