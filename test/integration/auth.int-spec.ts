import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiKeyService } from '../../apps/herald/src/auth/api-key.service';
import { AuthModule } from '../../apps/herald/src/auth/auth.module';
import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { TicketService } from '../../apps/herald/src/auth/ticket.service';
import { UpgradeAuthService, type UpgradeDecision } from '../../apps/herald/src/auth/upgrade-auth.service';
import { UserTokenService } from '../../apps/herald/src/auth/user-token.service';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../../apps/herald/src/common/errors';
import { RedisKeys } from '../../apps/herald/src/redis/redis-keys';
import { moved } from '../helpers/metrics';
import { testRedisClient } from '../helpers/redis';
import { TEST_API_KEY } from '../helpers/replica';
import { HeraldTestingModule } from '../helpers/testing-module';
import { waitFor } from '../helpers/wait';

const APP = 'https://app.example.com';
const OTHER_APP = 'https://other.example.com';
const SECOND_KEY = 'second-publisher-key-0123456789';
const MINTS_PER_MINUTE = 4;

/** An upgrade request as the gateway sees it: headers and URL only. */
function upgradeRequest(query: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url: `/ws${query}`, headers } as unknown as IncomingMessage;
}

function refusal(decision: UpgradeDecision): Error {
  if (decision.ok) throw new Error(`expected a refusal, got the user ${decision.principal.userId}`);
  return decision.error;
}

/**
 * The credential checks (AuthModule) in a Nest testing module against real Redis: publisher keys, user
 * tokens at the upgrade, and one-time tickets. Over HTTP and across replicas: test/e2e/tickets.e2e-spec.ts.
 */
describe('AuthModule', () => {
  let herald: HeraldTestingModule;
  let tickets: TicketService;
  let upgrades: UpgradeAuthService;
  let tokens: UserTokenService;
  const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

  beforeAll(async () => {
    herald = await HeraldTestingModule.create('auth', [AuthModule], {
      HERALD_API_KEYS: `${TEST_API_KEY},${SECOND_KEY}`,
      HERALD_ALLOWED_ORIGINS: `${APP},${OTHER_APP}`,
      HERALD_TICKET_MINTS_PER_MINUTE: String(MINTS_PER_MINUTE),
    });
    tickets = herald.get(TicketService);
    upgrades = herald.get(UpgradeAuthService);
    tokens = herald.get(UserTokenService);
  });

  afterAll(async () => {
    await herald?.close();
  });

  it('knows each publisher key by its non-secret id, and answers 401 for a missing or unknown one', () => {
    const keys = herald.get(ApiKeyService);
    expect(keys.authenticate(TEST_API_KEY)).toEqual({ keyId: publisherKeyId(TEST_API_KEY) });
    expect(keys.authenticate(SECOND_KEY)).toEqual({ keyId: publisherKeyId(SECOND_KEY) });
    expect(publisherKeyId(SECOND_KEY)).not.toContain(SECOND_KEY.slice(0, 8));
    expect(keys.authenticate(`${TEST_API_KEY}x`)).toBeNull();
    const of = (authorization?: string) =>
      keys.publisherOf({ headers: authorization ? { authorization } : {} } as IncomingMessage);
    expect(of(`Bearer ${SECOND_KEY}`)).toEqual({ keyId: publisherKeyId(SECOND_KEY) });
    expect(() => of()).toThrow(UnauthorizedError);
    expect(() => of()).toThrow('missing "Authorization: Bearer <API key>" header');
    expect(() => of('Bearer not-a-key')).toThrow('unknown API key');
  });

  it('takes a user token from Authorization, the herald.bearer. subprotocol or ?token=, and refuses the rest', async () => {
    const { token } = tokens.sign('ann', 60);
    for (const request of [
      upgradeRequest('', { authorization: `Bearer ${token}` }),
      upgradeRequest('', { 'sec-websocket-protocol': `herald.v1, herald.bearer.${token}` }),
      upgradeRequest(`?token=${token}`, { origin: APP }),
    ]) {
      const decision = await upgrades.decide(request);
      expect(decision).toMatchObject({ ok: true, principal: { userId: 'ann' } });
    }
    const missing = refusal(await upgrades.decide(upgradeRequest('')));
    expect(missing).toBeInstanceOf(UnauthorizedError);
    expect(missing.message).toBe('Missing token');
    const forged = refusal(await upgrades.decide(upgradeRequest(`?token=${token.slice(0, -2)}xx`)));
    expect(forged).toBeInstanceOf(UnauthorizedError);
    expect((forged as UnauthorizedError).challenge).toMatchObject({ invalidToken: true });
    const foreign = refusal(await upgrades.decide(upgradeRequest(`?token=${token}`, { origin: 'https://evil.test' })));
    expect(foreign).toEqual(new ForbiddenError('Origin not allowed'));
    // Minting takes the header only: a token in the URL is not a credential for it.
    expect(() => upgrades.bearerPrincipal(upgradeRequest(`?token=${token}`))).toThrow(
      'missing "Authorization: Bearer <user token>" header',
    );
  });

  it('opens with a ticket once: stored in Redis by its digest only, for 30 s by Redis’s clock, and counted', async () => {
    const before = await herald.metrics();
    const expiresAt = inAnHour();
    const minted = await tickets.mint('user', 'bob', expiresAt, APP);
    expect(minted.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const validFor = Date.parse(minted.expiresAt) - Date.now();
    expect(validFor).toBeGreaterThan(25_000);
    expect(validFor).toBeLessThanOrEqual(31_000);

    const redis = testRedisClient();
    const keyOf = (ticket: string) => herald.get(RedisKeys).ticket(createHash('sha256').update(ticket).digest('hex'));
    try {
      const key = keyOf(minted.ticket);
      expect(await redis.pttl(key)).toBeGreaterThan(28_000);
      expect(await redis.get(key)).not.toContain(minted.ticket);
      // It expires by Redis's clock: once the key is gone, the ticket is unknown.
      const expiring = await tickets.mint('user', 'bob', expiresAt, APP);
      await redis.pexpire(keyOf(expiring.ticket), 1);
      await waitFor('the ticket to expire in Redis', async () => (await redis.exists(keyOf(expiring.ticket))) === 0);
      const expired = refusal(await upgrades.decide(upgradeRequest(`?ticket=${expiring.ticket}`, { origin: APP })));
      expect(expired).toBeInstanceOf(UnauthorizedError);
    } finally {
      redis.disconnect();
    }

    const first = await upgrades.decide(upgradeRequest(`?ticket=${minted.ticket}`, { origin: APP }));
    expect(first).toEqual({ ok: true, principal: { userId: 'bob', expiresAt } });
    const again = refusal(await upgrades.decide(upgradeRequest(`?ticket=${minted.ticket}`, { origin: APP })));
    expect(again.message).toContain('invalid ticket');
    expect((again as UnauthorizedError).challenge).toMatchObject({ invalidToken: true });

    expect(
      moved(before, await herald.metrics(), [
        'herald_tickets_total{audience="user",outcome="minted"}',
        'herald_tickets_total{audience="user",outcome="used"}',
        'herald_tickets_total{audience="user",outcome="refused-unknown"}',
      ]),
    ).toEqual({
      'herald_tickets_total{audience="user",outcome="minted"}': 2,
      'herald_tickets_total{audience="user",outcome="used"}': 1,
      'herald_tickets_total{audience="user",outcome="refused-unknown"}': 2,
    });
  });

  it('refuses forged, malformed, foreign-origin, other-audience and expired-credential tickets, each used up', async () => {
    const before = await herald.metrics();
    const consume = (ticket: string, origin?: string, audience: 'user' | 'admin' = 'user') =>
      tickets.consume(ticket, audience, origin);
    await expect(consume(randomBytes(32).toString('base64url'))).rejects.toThrow(UnauthorizedError);
    await expect(consume('not-a-ticket')).rejects.toThrow(UnauthorizedError);

    const bound = await tickets.mint('user', 'carol', inAnHour(), APP);
    await expect(consume(bound.ticket, OTHER_APP)).rejects.toThrow(UnauthorizedError);
    await expect(consume(bound.ticket, APP)).rejects.toThrow(UnauthorizedError); // used up by the refusal
    // Minted without an Origin (not a browser): not bound to one.
    const bare = await tickets.mint('user', 'carol', inAnHour(), undefined);
    await expect(consume(bare.ticket, APP)).resolves.toMatchObject({ subject: 'carol' });

    const admin = await tickets.mint('admin', 'admin', inAnHour(), undefined);
    await expect(consume(admin.ticket)).rejects.toThrow(UnauthorizedError);

    // A ticket is worth no more than the credential it was minted with.
    const lapsed = await tickets.mint('user', 'carol', Math.floor(Date.now() / 1000) - 1, undefined);
    expect(Date.parse(lapsed.expiresAt)).toBeLessThanOrEqual(Date.now());
    await expect(consume(lapsed.ticket)).rejects.toThrow(UnauthorizedError);

    const outcomes = ['malformed', 'unknown', 'origin', 'audience', 'expired-credential'];
    const keys = outcomes.map((o) => `herald_tickets_total{audience="user",outcome="refused-${o}"}`);
    expect(Object.values(moved(before, await herald.metrics(), keys))).toEqual([1, 2, 1, 1, 1]);
  });

  it('mints a limited number per subject and minute, then answers 429 with the seconds left', async () => {
    for (let i = 0; i < MINTS_PER_MINUTE; i++) await tickets.mint('user', 'dave', inAnHour(), undefined);
    const limited = await tickets.mint('user', 'dave', inAnHour(), undefined).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).message).toMatch(/more than 4 tickets this minute for this user/);
    expect((limited as RateLimitedError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((limited as RateLimitedError).retryAfterSeconds).toBeLessThanOrEqual(60);
    // Another user, and the console, count on their own.
    await expect(tickets.mint('user', 'erin', inAnHour(), undefined)).resolves.toHaveProperty('ticket');
    await expect(tickets.mint('admin', 'admin', inAnHour(), undefined)).resolves.toHaveProperty('ticket');
  });
});
