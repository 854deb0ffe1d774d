import { BroadcastDraft, buildRequest } from './broadcast-form';

const draft = (over: Partial<BroadcastDraft>): BroadcastDraft => ({
  audience: 'all',
  topic: '',
  users: '',
  event: 'maintenance',
  payload: '',
  ttlSeconds: '',
  ...over,
});

describe('buildRequest', () => {
  it('builds each audience, with payload and TTL only when given', () => {
    expect(buildRequest(draft({}))).toEqual({ ok: true, request: { to: { all: true }, event: 'maintenance' } });
    expect(buildRequest(draft({ audience: 'topic', topic: ' news ' }))).toMatchObject({
      request: { to: { topic: 'news' } },
    });
    expect(buildRequest(draft({ audience: 'users', users: 'alice, bob\nalice' }))).toMatchObject({
      request: { to: { users: ['alice', 'bob'] } },
    });
    expect(buildRequest(draft({ payload: '{"a": [1]}', ttlSeconds: '60' }))).toMatchObject({
      request: { payload: { a: [1] }, ttlSeconds: 60 },
    });
  });

  it('says what is wrong with each field', () => {
    const result = buildRequest(
      draft({ audience: 'users', users: 'bad user!', event: '', payload: '{"a":', ttlSeconds: '1.5' }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.users).toContain('"user!" is not a user id');
    expect(result.errors.event).toMatch(/required/);
    expect(result.errors.payload).toMatch(/^Not valid JSON/);
    expect(result.errors.ttlSeconds).toMatch(/whole number/);
    expect(buildRequest(draft({ audience: 'topic', topic: 'a b' })).ok).toBe(false);
  });

  it('checks the event name as the server does: "bad event" is refused', () => {
    for (const event of ['bad event', 'x'.repeat(129), 'café']) {
      const result = buildRequest(draft({ event }));
      expect({ event, ok: result.ok }).toEqual({ event, ok: false });
      if (!result.ok) expect(result.errors.event).toMatch(/letters, digits/);
    }
    expect(buildRequest(draft({ event: 'order.shipped:v2' })).ok).toBe(true);
  });

  it('refuses an empty user list and a TTL below 1', () => {
    const empty = buildRequest(draft({ audience: 'users', users: ' , ' }));
    expect(empty.ok ? '' : empty.errors.users).toMatch(/at least one user/);
    const zero = buildRequest(draft({ ttlSeconds: '0' }));
    expect(zero.ok ? '' : zero.errors.ttlSeconds).toMatch(/whole number/);
  });
});
