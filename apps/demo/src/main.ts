/**
 * The demo end-user page: an inbox built on @herald/client. It mints a token
 * through the demo-only endpoint (POST /v1/demo/tokens, off unless
 * HERALD_DEMO_TOKENS=true), connects, and shows notifications as they come.
 */
import { HeraldClient, type Notification } from '@herald/client';

interface InboxItem {
  notification: Notification;
  read: boolean;
  receivedAt: Date;
}

const TOAST_MS = 5000;

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
  empty: element<HTMLParagraphElement>('empty'),
  inbox: element<HTMLOListElement>('inbox'),
  toasts: element<HTMLDivElement>('toasts'),
};

let client: HeraldClient | null = null;
let items: InboxItem[] = [];
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

function render(): void {
  const unread = items.filter((i) => !i.read).length;
  ui.unread.textContent = String(unread);
  ui.unread.dataset.count = String(unread);
  ui.markRead.disabled = unread === 0;
  ui.empty.hidden = items.length > 0;
  ui.inbox.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement('li');
      li.className = item.read ? 'read' : 'unread';
      li.tabIndex = 0;
      li.dataset.id = item.notification.id;
      li.dataset.seq = String(item.notification.seq);
      const event = document.createElement('div');
      event.className = 'event';
      event.textContent = item.notification.event;
      const meta = document.createElement('div');
      meta.className = 'meta';
      meta.textContent = `#${item.notification.seq} · ${item.receivedAt.toLocaleTimeString()}${
        item.notification.topic ? ` · topic ${item.notification.topic}` : ''
      }${item.notification.attempt > 1 ? ` · attempt ${item.notification.attempt}` : ''}`;
      const payload = document.createElement('pre');
      payload.textContent = JSON.stringify(item.notification.payload, null, 2);
      li.append(event, meta, payload);
      const markRead = () => {
        item.read = true;
        render();
      };
      li.addEventListener('click', markRead);
      li.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') markRead();
      });
      return li;
    }),
  );
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
}

function connect(userId: string): void {
  disconnect();
  items = [];
  render();
  ui.loginError.hidden = true;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const next = new HeraldClient({ url: `${scheme}//${location.host}/ws`, getToken: () => mintToken(userId) });
  client = next;
  next.on('connecting', ({ transport }) => setState('connecting', `over ${transport}`));
  next.on('open', ({ transport, replicaId }) =>
    setState('open', `as ${userId} over ${transport}, replica ${replicaId}`),
  );
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
  next.onNotification((notification) => {
    items.unshift({ notification, read: false, receivedAt: new Date() });
    render();
    toast(notification);
  });
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
ui.markRead.addEventListener('click', () => {
  for (const item of items) item.read = true;
  render();
});
render();
