import { BadRequestError } from '../common/errors';
import { canonicalJson, parseIdempotencyKey } from './publish.dto';

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
