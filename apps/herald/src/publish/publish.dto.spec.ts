import { BadRequestError, PayloadTooLargeError } from '../common/errors';
import { canonicalJson, parseIdempotencyKey, parsePublishRequest } from './publish.dto';

const limits = { maxRecipients: 3, maxPayloadBytes: 64, maxTtlSeconds: 100, defaultTtlSeconds: 50 };

describe('parsePublishRequest', () => {
  it('applies defaults and removes duplicate users', () => {
    expect(parsePublishRequest({ to: { users: ['a', 'b', 'a'] }, event: 'e' }, limits)).toEqual({
      audience: { users: ['a', 'b'] },
      event: 'e',
      payload: {},
      ttlSeconds: 50,
    });
  });

  it('accepts topic and everyone audiences', () => {
    expect(parsePublishRequest({ to: { topic: 'news' }, event: 'e', ttlSeconds: 100 }, limits).audience).toEqual({
      topic: 'news',
    });
    expect(parsePublishRequest({ to: { all: true }, event: 'e' }, limits).audience).toEqual({ all: true });
  });

  it('reports every problem with its field', () => {
    try {
      parsePublishRequest({ to: { users: ['a', 'b', 'c', 'd'] }, event: '', ttlSeconds: 101 }, limits);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).details?.map((d) => d.field)).toEqual(['to.users', 'event', 'ttlSeconds']);
    }
  });

  it('refuses a payload over the limit with PayloadTooLargeError', () => {
    expect(() =>
      parsePublishRequest({ to: { all: true }, event: 'e', payload: { s: 'x'.repeat(64) } }, limits),
    ).toThrow(PayloadTooLargeError);
  });
});

describe('parseIdempotencyKey', () => {
  it('accepts printable keys and refuses others', () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
    expect(parseIdempotencyKey('order-42')).toBe('order-42');
    expect(() => parseIdempotencyKey('has space')).toThrow(BadRequestError);
    expect(() => parseIdempotencyKey('x'.repeat(256))).toThrow(BadRequestError);
  });
});

describe('canonicalJson', () => {
  it('is independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 1, e: 2 }], c: null } })).toBe(
      canonicalJson({ a: { c: null, d: [1, { e: 2, f: 1 }] }, b: 1 }),
    );
  });
});

describe('parsePublishRequest payload checks', () => {
  const roomy = { ...limits, maxPayloadBytes: 100_000 };

  it('refuses what PostgreSQL jsonb cannot store, with 400 on the payload field', () => {
    for (const payload of [{ s: 'a\u0000b' }, { s: '\ud800' }, { ['k\u0000']: 1 }, ['\udc00x']]) {
      expect(() => parsePublishRequest({ to: { all: true }, event: 'e', payload }, roomy)).toThrow(BadRequestError);
    }
    for (const payload of [{ s: '😀' }, { s: '\\u0000 is how you write it' }]) {
      expect(parsePublishRequest({ to: { all: true }, event: 'e', payload }, roomy).payload).toEqual(payload);
    }
  });

  it('refuses deep nesting without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => parsePublishRequest({ to: { all: true }, event: 'e', payload: deep }, roomy)).toThrow(/nests deeper/);
    let ok: unknown = 1;
    for (let i = 0; i < 31; i++) ok = { a: ok };
    expect(() => parsePublishRequest({ to: { all: true }, event: 'e', payload: ok }, roomy)).not.toThrow();
  });

  it('sorts user ids, so the same set in any order is the same request', () => {
    expect(parsePublishRequest({ to: { users: ['b', 'a', 'b'] }, event: 'e' }, roomy).audience).toEqual({
      users: ['a', 'b'],
    });
  });
});
