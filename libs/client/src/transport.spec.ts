import type { ServerFrame, WelcomeFrame } from '@herald/protocol';
import { HeraldClient, type HeraldClientOptions, ReadyState } from './client.js';

/** A WebSocket the test plays the server for. */
class Socket {
  static all: Socket[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    Socket.all.push(this);
  }

  static get last(): Socket {
    return Socket.all[Socket.all.length - 1]!;
  }

  send(): void {}

  close(code = 1005, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const welcome: WelcomeFrame = {
  type: 'welcome',
  protocol: 1,
  connectionId: 'c-1',
  userId: 'alice',
  replicaId: 'r1',
  heartbeatMs: 25_000,
  maxMessageBytes: 65536,
};

function client(options: Partial<HeraldClientOptions> = {}): HeraldClient {
  return new HeraldClient({
    url: 'ws://herald.test/ws',
    token: 't0',
    WebSocket: Socket,
    random: () => 1,
    credentials: 'query',
    connectTimeoutMs: 1000,
    fetch: () => Promise.reject(new Error('no network in unit tests')),
    ...options,
  });
}

/** An SSE stream the test writes to, and a fetch that answers each stream request with a new one. */
function streams() {
  const encoder = new TextEncoder();
  const opened: ((frame: ServerFrame) => void)[] = [];
  const fetch = jest.fn(async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        opened.push((frame) => controller.enqueue(encoder.encode(`data: ${JSON.stringify(frame)}\n\n`)));
      },
    });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, opened };
}

async function settle(ms = 0): Promise<void> {
  await jest.advanceTimersByTimeAsync(0);
  await jest.advanceTimersByTimeAsync(ms);
}

beforeEach(() => {
  jest.useFakeTimers();
  Socket.all = [];
});

afterEach(() => {
  jest.useRealTimers();
});

describe('HeraldClient transports', () => {
  it('ignores what a WebSocket it gave up on says afterwards (the generation guard)', async () => {
    const c = client();
    const opened = jest.fn();
    const closed = jest.fn();
    c.on('open', opened);
    c.on('closed', closed);
    c.connect();
    await settle();
    const first = Socket.last;
    first.readyState = 1;
    // Kept as a late event loop would still hold them, past the client dropping the socket.
    const { onmessage, onclose } = first;
    await settle(1000);
    expect(first.readyState).toBe(3);
    onmessage?.({ data: JSON.stringify(welcome) });
    onclose?.({ code: 1002, reason: 'late' });
    expect([c.readyState, opened.mock.calls.length, closed.mock.calls.length]).toEqual([ReadyState.CONNECTING, 0, 0]);
    await settle(1000);
    expect(Socket.all).toHaveLength(2);
    Socket.last.readyState = 1;
    Socket.last.onmessage?.({ data: JSON.stringify(welcome) });
    expect(c.readyState).toBe(ReadyState.OPEN);
    c.close();
  });

  it('ignores the events of an SSE stream it gave up on', async () => {
    const { fetch, opened } = streams();
    const c = client({ transport: 'sse', fetch });
    const open = jest.fn();
    c.on('open', open);
    c.connect();
    await settle();
    expect(opened).toHaveLength(1);
    await settle(1000);
    // No welcome within connectTimeoutMs: dropped. What it sends now is not this client's business.
    opened[0]!(welcome);
    await settle();
    expect([c.readyState, open.mock.calls.length]).toEqual([ReadyState.CONNECTING, 0]);
    await settle(1000);
    expect(opened).toHaveLength(2);
    opened[1]!(welcome);
    await settle();
    expect(c.readyState).toBe(ReadyState.OPEN);
    expect(open).toHaveBeenCalledWith(expect.objectContaining({ transport: 'sse', connectionId: 'c-1' }));
    c.close();
  });

  it('tries the WebSocket again after retryWebSocketAfterMs on the SSE fallback', async () => {
    const c = client({ retryWebSocketAfterMs: 20_000 });
    const transports: string[] = [];
    c.on('connecting', (e) => transports.push(e.transport));
    c.connect();
    await settle();
    for (let i = 0; i < 3; i++) {
      Socket.last.close(1006);
      await settle(10_000);
    }
    expect(c.transport).toBe('sse');
    // The SSE attempts fail too (no network); after 20 s on SSE, the next attempt is a WebSocket.
    for (let waited = 0; c.transport === 'sse' && waited < 60_000; waited += 1000) await settle(1000);
    expect(c.transport).toBe('websocket');
    expect(transports.slice(0, 4)).toEqual(['websocket', 'websocket', 'websocket', 'sse']);
    expect(transports[transports.length - 1]).toBe('websocket');
    expect(Socket.all).toHaveLength(4);
    c.close();
  });
});
