import { createHmac } from 'node:crypto';
import { newSigningSecret, sign, signatureHeader, verify } from './signature';

/** The Standard Webhooks reference vector (its libraries' tests use the same one). */
const REFERENCE = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

function headers(signature: string, timestamp = REFERENCE.timestamp, id = REFERENCE.id) {
  return { id, timestamp: String(timestamp), signature };
}

describe('newSigningSecret', () => {
  it('is whsec_ and 24 random bytes in base64, new each time', () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(24);
    expect(newSigningSecret()).not.toBe(secret);
  });
});

describe('sign', () => {
  it('matches the Standard Webhooks reference vector', () => {
    const { secret, id, timestamp, body } = REFERENCE;
    expect(sign(secret, id, timestamp, body)).toBe(REFERENCE.signature);
  });

  it('is HMAC-SHA256 over id.timestamp.body, keyed by the base64 after whsec_', () => {
    const key = Buffer.from('a key of some bytes');
    const expected = createHmac('sha256', key).update('msg_1.1700000000.{"a":"é"}').digest('base64');
    expect(sign(`whsec_${key.toString('base64')}`, 'msg_1', 1700000000, '{"a":"é"}')).toBe(`v1,${expected}`);
  });

  it('refuses an empty key and a timestamp that is not whole seconds', () => {
    expect(() => sign('whsec_', 'msg_1', 1, '{}')).toThrow('non-empty base64 key');
    expect(() => sign(REFERENCE.secret, 'msg_1', 1.5, '{}')).toThrow('whole seconds');
  });
});

describe('signatureHeader', () => {
  it('signs with every secret, space-separated, so a rotation verifies under either', () => {
    const previous = newSigningSecret();
    const { secret, id, timestamp, body } = REFERENCE;
    const header = signatureHeader([secret, previous], id, timestamp, body);
    expect(header).toBe(`${REFERENCE.signature} ${sign(previous, id, timestamp, body)}`);
    expect(verify(secret, headers(header), body, timestamp)).toBe(true);
    expect(verify(previous, headers(header), body, timestamp)).toBe(true);
    expect(() => signatureHeader([], id, timestamp, body)).toThrow('at least one secret');
  });
});

describe('verify', () => {
  const { secret, body, timestamp } = REFERENCE;

  it('accepts the reference signature, alone or among others of any version', () => {
    expect(verify(secret, headers(REFERENCE.signature), body, timestamp)).toBe(true);
    const mixed = `v1a,abc v1,${Buffer.alloc(32).toString('base64')} ${REFERENCE.signature}`;
    expect(verify(secret, headers(mixed), body, timestamp)).toBe(true);
  });

  it('rejects a changed body, id or secret, and a malformed or missing signature', () => {
    expect(verify(secret, headers(REFERENCE.signature), '{"test": 2432232315}', timestamp)).toBe(false);
    expect(verify(secret, headers(REFERENCE.signature, timestamp, 'msg_other'), body, timestamp)).toBe(false);
    expect(verify(newSigningSecret(), headers(REFERENCE.signature), body, timestamp)).toBe(false);
    expect(verify(secret, headers(REFERENCE.signature.slice(3)), body, timestamp)).toBe(false);
    expect(verify(secret, headers('v1,'), body, timestamp)).toBe(false);
    expect(verify(secret, headers(''), body, timestamp)).toBe(false);
  });

  it('rejects a timestamp outside the tolerance either way, and one that is not a number', () => {
    const signed = headers(REFERENCE.signature);
    expect(verify(secret, signed, body, timestamp + 300)).toBe(true);
    expect(verify(secret, signed, body, timestamp - 300)).toBe(true);
    expect(verify(secret, signed, body, timestamp + 301)).toBe(false);
    expect(verify(secret, signed, body, timestamp - 301)).toBe(false);
    expect(verify(secret, signed, body, timestamp + 1000, 1000)).toBe(true);
    expect(verify(secret, { ...signed, timestamp: '1614265330.0' }, body, timestamp)).toBe(false);
    expect(verify(secret, { ...signed, timestamp: '' }, body, timestamp)).toBe(false);
  });
});
