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
