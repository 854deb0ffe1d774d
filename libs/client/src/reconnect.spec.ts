import { DEFAULT_BACKOFF } from './backoff.js';
import { type Ending, type ReconnectOptions, Reconnects } from './reconnect.js';

function reconnects(options: Partial<ReconnectOptions> = {}): Reconnects {
  return new Reconnects({
    mode: 'auto',
    hasWebSocket: true,
    fallbackAfter: 3,
    retryWebSocketAfterMs: 300_000,
    backoff: DEFAULT_BACKOFF,
    random: () => 1,
    canRefreshToken: true,
    ...options,
  });
}

/** A WebSocket upgrade that never got a welcome. */
const refused: Ending = { code: 1006, reason: '', wasOpen: false, openForMs: 0, attempted: true };

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('Reconnects', () => {
  it('refuses transport: websocket without a WebSocket class, and falls back to SSE in auto mode', () => {
    expect(() => reconnects({ mode: 'websocket', hasWebSocket: false })).toThrow(/WebSocket/);
    expect(reconnects({ hasWebSocket: false }).kind).toBe('sse');
    expect(reconnects({ mode: 'sse' }).kind).toBe('sse');
  });

  it('falls back to SSE after fallbackAfter refused upgrades, asking for a fresh token from the second', () => {
    const r = reconnects();
    expect(r.next(refused)).toEqual({ stop: false, delayMs: 1000, freshToken: false, fellBack: false });
    expect(r.next(refused)).toEqual({ stop: false, delayMs: 2000, freshToken: true, fellBack: false });
    expect(r.next(refused)).toEqual({ stop: false, delayMs: 4000, freshToken: true, fellBack: true });
    expect(r.kind).toBe('sse');
  });

  it('does not count an attempt that never reached for the server (a failed ticket, getToken) as a refused upgrade', () => {
    const r = reconnects({ fallbackAfter: 1 });
    expect(r.next({ ...refused, attempted: false })).toMatchObject({ stop: false, fellBack: false });
    expect(r.kind).toBe('websocket');
  });

  it('tries the WebSocket again at the first attempt after retryWebSocketAfterMs on SSE', () => {
    const r = reconnects({ fallbackAfter: 1, retryWebSocketAfterMs: 60_000 });
    r.next(refused);
    expect(r.kind).toBe('sse');
    r.beforeAttempt();
    expect(r.kind).toBe('sse');
    jest.advanceTimersByTime(60_000);
    r.beforeAttempt();
    expect([r.kind, r.failedUpgrades]).toEqual(['websocket', 0]);
  });

  it('stops on a fatal close, and on a second token refusal in a row or one with no getToken', () => {
    expect(reconnects().next({ ...refused, code: 1002 })).toEqual({ stop: true });
    const r = reconnects();
    const policy: Ending = { code: 1008, reason: 'token expired', wasOpen: true, openForMs: 100, attempted: true };
    expect(r.next(policy)).toMatchObject({ stop: false, freshToken: true });
    expect(r.next(policy)).toEqual({ stop: true });
    expect(reconnects({ canRefreshToken: false }).next(policy)).toEqual({ stop: true });
  });

  it('resets the backoff and the token refusals after a stable connection', () => {
    const r = reconnects();
    const policy: Ending = { code: 1008, reason: 'token expired', wasOpen: true, openForMs: 100, attempted: true };
    r.next(refused);
    r.next(policy);
    const stable = { ...policy, openForMs: DEFAULT_BACKOFF.stableAfterMs };
    expect(r.next(stable)).toEqual({ stop: false, delayMs: 1000, freshToken: true, fellBack: false });
    expect(r.attempt).toBe(1);
  });

  it('comes back when a shedding server asks, without counting an attempt, and ends a run of refused upgrades', () => {
    const r = reconnects();
    r.next(refused);
    r.next(refused);
    const shed: Ending = { code: 1013, reason: 'retry after 2400 ms', wasOpen: false, openForMs: 0, attempted: true };
    expect(r.next(shed)).toEqual({ stop: false, delayMs: 2400, freshToken: false, fellBack: false });
    expect([r.attempt, r.failedUpgrades, r.kind]).toEqual([2, 0, 'websocket']);
  });
});
