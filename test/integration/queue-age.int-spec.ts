/**
 * HERALD_MAX_QUEUE_AGE_MS: a WebSocket upgrade or SSE stream request that waited longer than the bound
 * between the proxy's stamp (X-Request-Start) and the replica is turned away before any work, as a shed one
 * is (1013 `retry after <n> ms`, or 503 with Retry-After).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { retryAfterOf } from '@herald/protocol';
import { SHED_MIN_DELAY_MS } from '../../apps/herald/src/connections/handshake-admission';
import { userToken } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { scrape } from '../helpers/metrics';

/** Nginx's `t=${msec}` for a request read `ageMs` ago. */
const stampedAgo = (ageMs: number) => `t=${((Date.now() - ageMs) / 1000).toFixed(3)}`;

/** What an upgrade with these headers came to: welcomed, or closed before `welcome` with this code and reason. */
function attempt(
  url: string,
  headers: Record<string, string>,
): Promise<{ welcomed: boolean; code?: number; reason?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('message', () => {
      socket.close();
      resolve({ welcomed: true });
    });
    socket.once('close', (code, reason) => resolve({ welcomed: false, code, reason: reason.toString('utf8') }));
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused ${res.statusCode}`)));
    socket.once('error', (error) => reject(error));
  });
}

describe('Requests that queued too long (HERALD_MAX_QUEUE_AGE_MS)', () => {
  let herald: InProcessHerald;

  beforeAll(async () => {
    herald = await InProcessHerald.start('queueage', {
      HERALD_MAX_QUEUE_AGE_MS: '3000',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
    });
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('turns an upgrade and a stream stamped longer ago than the bound away as shed ones, before any work, and counts them', async () => {
    const token = userToken(`old-${randomUUID()}`);
    // A young stamp first, as a queue that built up has: ages alone past the bound would read as clock skew.
    expect(await attempt(`${herald.ws}?token=${token}`, { 'x-request-start': stampedAgo(100) })).toEqual({
      welcomed: true,
    });
    const opened = (await scrape([herald.http])).get('herald_connections_opened_total');
    // A token that would be refused 401: the age is looked at first, so it never is.
    const turned = await attempt(`${herald.ws}?token=not-a-token`, { 'x-request-start': stampedAgo(5000) });
    expect(turned.welcomed).toBe(false);
    expect(turned.code).toBe(1013);
    expect(retryAfterOf(turned.reason!)).toBeGreaterThanOrEqual(SHED_MIN_DELAY_MS);

    const stream = await fetch(`${herald.http}/v1/stream`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'x-request-start': stampedAgo(4000) },
    });
    expect(stream.status).toBe(503);
    const body = (await stream.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UNAVAILABLE');
    const delay = retryAfterOf(body.error.message);
    expect(delay).toBeGreaterThanOrEqual(SHED_MIN_DELAY_MS);
    expect(stream.headers.get('retry-after')).toBe(String(Math.ceil(delay! / 1000)));

    const samples = await scrape([herald.http]);
    expect(samples.get('herald_handshakes_too_old_total{transport="websocket"}')).toBe(1);
    expect(samples.get('herald_handshakes_too_old_total{transport="sse"}')).toBe(1);
    // Not shed for load (the bound of setups at once was never reached), and nothing was set up for them.
    expect(samples.get('herald_handshakes_shed_total{transport="websocket"}') ?? 0).toBe(0);
    expect(samples.get('herald_connections_opened_total')).toBe(opened);
    expect(samples.get('herald_upgrades_refused_total{status="401"}') ?? 0).toBe(0);
  });

  it('takes a request within the bound, one without a stamp, and one whose stamp says the clocks are apart', async () => {
    const url = `${herald.ws}?token=${userToken(`fresh-${randomUUID()}`)}`;
    for (const stamp of [
      stampedAgo(1000),
      undefined,
      'not a time',
      // From the future, or an hour ago: the proxy's clock is not the replica's; no age can be told.
      stampedAgo(-60_000),
      stampedAgo(3_600_000),
    ]) {
      expect(await attempt(url, stamp === undefined ? {} : { 'x-request-start': stamp })).toEqual({ welcomed: true });
    }
  });
});
