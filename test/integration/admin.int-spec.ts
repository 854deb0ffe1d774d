import { randomUUID } from 'node:crypto';
import { AdminNotificationsQuerySchema } from '@herald/protocol';
import { AdminModule } from '../../apps/herald/src/admin/admin.module';
import { AdminSessionService } from '../../apps/herald/src/admin/admin-session.service';
import { ADMIN_PUBLISHER, AdminService } from '../../apps/herald/src/admin/admin.service';
import { LoginAttemptsRepository } from '../../apps/herald/src/admin/login-attempts.repository';
import { UserTokenService } from '../../apps/herald/src/auth/user-token.service';
import {
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
} from '../../apps/herald/src/common/errors';
import { PublishService } from '../../apps/herald/src/publish/publish.service';
import { TEST_ADMIN_PASSWORD } from '../helpers/replica';
import { HeraldTestingModule } from '../helpers/testing-module';

const LOGIN_ATTEMPTS = 3;
const SESSION_TTL_SECONDS = 600;
const RETENTION_HOURS = 48;
const PUBLISHER = 'publisher-a';

/**
 * What the console asks of the service (AdminModule) in a Nest testing module, against real PostgreSQL and
 * Redis: sessions and the login limit, history and detail, audience previews, statistics. Live connections
 * and the event stream across replicas: test/e2e/admin-api.e2e-spec.ts.
 */
describe('AdminModule', () => {
  let herald: HeraldTestingModule;
  let sessions: AdminSessionService;
  let admin: AdminService;
  let publisher: PublishService;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  /** The history as `GET /admin/api/notifications` asks for it: the query string's values, parsed. */
  const history = (query: Record<string, string>) => admin.notifications(AdminNotificationsQuerySchema.parse(query));
  const publish = (publisherId: string, body: unknown) =>
    publisher.publish(publisherId, publisher.parseRequest(body), undefined).then((o) => o.response);

  beforeAll(async () => {
    herald = await HeraldTestingModule.create('admin', [AdminModule], {
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_ADMIN_LOGIN_ATTEMPTS: String(LOGIN_ATTEMPTS),
      HERALD_ADMIN_SESSION_TTL_SECONDS: String(SESSION_TTL_SECONDS),
      HERALD_RETENTION_HOURS: String(RETENTION_HOURS),
    });
    sessions = herald.get(AdminSessionService);
    admin = herald.get(AdminService);
    publisher = herald.get(PublishService);
  });

  afterAll(async () => {
    await herald?.close();
  });

  describe('sessions', () => {
    it('gives a session for the password, which verifies until its expiry; forged ones and user tokens do not', async () => {
      const session = await sessions.login(TEST_ADMIN_PASSWORD, '192.0.2.1');
      const expiry = Date.parse(session.expiresAt);
      expect(expiry - Date.now()).toBeGreaterThan((SESSION_TTL_SECONDS - 60) * 1000);
      expect(expiry - Date.now()).toBeLessThanOrEqual(SESSION_TTL_SECONDS * 1000);
      expect(sessions.verify(session.token)).toBe(true);
      expect(sessions.expiryOf(session.token)).toBe(expiry);
      expect(sessions.verify(`${session.token}x`)).toBe(false);
      expect(sessions.expiryOf(`${session.token}x`)).toBe(0);
      // Signed with the same secret, but a user token is not a session.
      expect(sessions.verify(herald.get(UserTokenService).sign('admin', 600).token)).toBe(false);
    });

    it('limits wrong passwords per address, counting only the wrong ones', async () => {
      const from = '198.51.100.7';
      const wrong = () => sessions.login('guess', from);
      await expect(wrong()).rejects.toThrow('wrong password');
      await expect(wrong()).rejects.toThrow(UnauthorizedError);
      // A right one in between does not count, and does not clear the wrong ones either.
      await expect(sessions.login(TEST_ADMIN_PASSWORD, from)).resolves.toHaveProperty('token');
      await expect(wrong()).rejects.toThrow(UnauthorizedError);
      const limited = await sessions.login(TEST_ADMIN_PASSWORD, from).catch((e: unknown) => e);
      expect(limited).toBeInstanceOf(RateLimitedError);
      expect((limited as RateLimitedError).message).toMatch(/too many wrong passwords from this address/);
      expect((limited as RateLimitedError).retryAfterSeconds).toBeGreaterThan(0);
      expect((limited as RateLimitedError).retryAfterSeconds).toBeLessThanOrEqual(60);
      // Another address has its own count.
      await expect(sessions.login(TEST_ADMIN_PASSWORD, '198.51.100.8')).resolves.toHaveProperty('token');
    });

    it('is off without a password: login answers 503 naming the setting', async () => {
      const off = new AdminSessionService({ ...herald.config, adminPassword: '' }, herald.get(LoginAttemptsRepository));
      expect(off.enabled).toBe(false);
      await expect(off.login('', '192.0.2.2')).rejects.toThrow(UnavailableError);
      await expect(off.login('', '192.0.2.2')).rejects.toThrow(/set HERALD_ADMIN_PASSWORD/);
    });
  });

  describe('history', () => {
    it('pages a user’s notifications newest first, by seq, with how far back the record reaches', async () => {
      const erin = user('erin');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await publish(PUBLISHER, { to: { users: [erin] }, event: 'paged' })).id);
      const first = await history({ limit: '3', userId: erin });
      expect(first.items.map((n) => n.id)).toEqual(ids.slice(2).reverse());
      expect(first.items[0]).toMatchObject({ publisherId: PUBLISHER, event: 'paged', recipients: 1 });
      expect(first.nextCursor).toBe(String(first.items[2]!.seq));
      const second = await history({ limit: '3', userId: erin, before: first.nextCursor! });
      expect(second.items.map((n) => n.id)).toEqual(ids.slice(0, 2).reverse());
      expect(second.nextCursor).toBeNull();
      expect(second.reach.retentionHours).toBe(RETENTION_HOURS);
      expect(Date.parse(second.reach.oldestAt!)).toBeLessThanOrEqual(Date.parse(second.items[1]!.createdAt));
    });

    it('filters by event, status and time, each alone and together', async () => {
      const fay = user('fay');
      const event = `filtered-${randomUUID().slice(0, 8)}`;
      const a = await publish(PUBLISHER, { to: { users: [fay] }, event });
      const b = await publish(ADMIN_PUBLISHER, { to: { users: [fay] }, event: `${event}-other` });
      const inAMinute = new Date(Date.now() + 60_000).toISOString();
      const ids = async (query: Record<string, string>) => (await history(query)).items.map((n) => n.id);
      expect(await ids({ event })).toEqual([a.id]);
      expect(await ids({ userId: fay, status: 'pending' })).toEqual([b.id, a.id]);
      expect(await ids({ userId: fay, status: 'acked' })).toEqual([]);
      expect(await ids({ userId: fay, from: inAMinute })).toEqual([]);
      expect(await ids({ userId: fay, to: inAMinute, event })).toEqual([a.id]);
    });

    it('shows any publisher’s notification to the console, and only its own to a publisher', async () => {
      const gus = user('gus');
      const { id } = await publish(PUBLISHER, {
        to: { users: [gus, user('hal')] },
        event: 'detail',
        payload: { n: 1 },
      });
      const view = await admin.notification(id, { limit: 1 });
      expect(view).toMatchObject({ id, event: 'detail', payload: { n: 1 }, recipients: 2 });
      expect(view.counts).toMatchObject({ pending: 2, acked: 0 });
      expect(view.deliveries.items).toHaveLength(1);
      expect(view.deliveries.nextCursor).toBe(view.deliveries.items[0]!.userId);
      await expect(publisher.get(PUBLISHER, id, { limit: 10 })).resolves.toMatchObject({ id });
      await expect(publisher.get('publisher-b', id, { limit: 10 })).rejects.toThrow(NotFoundError);
      await expect(admin.notification('not-a-uuid', { limit: 10 })).rejects.toThrow(NotFoundError);
      await expect(admin.notification(randomUUID(), { limit: 10 })).rejects.toThrow(NotFoundError);
    });
  });

  it('previews a broadcast’s audience: a user list as given, everyone as every known user', async () => {
    const listed = [user('ida'), user('jo'), user('kim')];
    await expect(admin.preview(publisher.parseRequest({ to: { users: listed }, event: 'x' }))).resolves.toEqual({
      recipients: 3,
    });
    const known = await herald.dataSource.query<{ n: number }[]>('SELECT count(*)::int AS n FROM users');
    await expect(admin.preview(publisher.parseRequest({ to: { all: true }, event: 'x' }))).resolves.toEqual({
      recipients: known[0]!.n,
    });
  });

  it('broadcasts as the console, with an idempotency key', async () => {
    const lee = user('lee');
    const request = publisher.parseRequest({ to: { users: [lee] }, event: 'from-console' });
    const sent = await admin.broadcast(request, 'console-key-1');
    expect(sent).toMatchObject({ replayed: false, response: { recipients: 1 } });
    await expect(admin.broadcast(request, 'console-key-1')).resolves.toEqual({ ...sent, replayed: true });
    const [summary] = (await history({ limit: '1', userId: lee })).items;
    expect(summary).toMatchObject({ id: sent.response.id, publisherId: ADMIN_PUBLISHER });
  });

  it('reports statistics: thirty minutes of publishes, redeliveries and failures, and no connections here', async () => {
    const before = await admin.stats();
    await publish(PUBLISHER, { to: { users: [user('max'), user('ned')] }, event: 'counted' });
    const after = await admin.stats();
    expect(after.notificationsPerMinute).toHaveLength(30);
    const thisMinute = (s: typeof before) => s.notificationsPerMinute.at(-1)!;
    // The minute may have turned between the two reads: then this minute holds at least the new one.
    expect(thisMinute(after).count).toBe(
      thisMinute(after).minute === thisMinute(before).minute ? thisMinute(before).count + 1 : thisMinute(after).count,
    );
    expect(thisMinute(after).count).toBeGreaterThanOrEqual(1);
    expect(after).toMatchObject({
      connections: { total: 0, perReplica: {} },
      redeliveriesLastHour: 0,
      failuresLastHour: 0,
      ackLatencyMs: { samples: 0, p50: null, p95: null },
    });
  });

  it('lists no connections where none is open, and answers 404 for disconnecting an unknown one', async () => {
    await expect(admin.connections({})).resolves.toEqual({ items: [], total: 0, perReplica: {} });
    await expect(admin.disconnect(randomUUID())).rejects.toThrow(new NotFoundError('no live connection with this id'));
  });
});
