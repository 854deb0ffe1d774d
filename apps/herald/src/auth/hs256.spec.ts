import jwt from 'jsonwebtoken';
import { createHmac, createSecretKey } from 'node:crypto';
import { verifyHs256, type Hs256Refusal } from './hs256';

const SECRET = 'a-test-secret-of-thirty-two-bytes!!';
const KEY = createSecretKey(Buffer.from(SECRET, 'utf8'));
const TOLERANCE = 5;

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
/** A token with any header and payload text, signed with `secret` over exactly what it holds. */
function forge(header: unknown, payload: unknown, secret = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** What jsonwebtoken, with the options Herald used, says of a token: the reference. */
function reference(token: string): 'ok' | Hs256Refusal {
  try {
    const claims = jwt.verify(token, KEY, { algorithms: ['HS256'], clockTolerance: TOLERANCE });
    return typeof claims === 'string' ? 'invalid' : 'ok';
  } catch (error) {
    if (error instanceof jwt.TokenExpiredError) return 'expired';
    if (error instanceof jwt.NotBeforeError) return 'not-yet-valid';
    return 'invalid';
  }
}

function outcome(token: string): 'ok' | Hs256Refusal {
  const result = verifyHs256(token, KEY, Math.floor(Date.now() / 1000), TOLERANCE);
  return result.ok ? 'ok' : result.refusal;
}

describe('verifyHs256', () => {
  const now = Math.floor(Date.now() / 1000);
  const hs = { alg: 'HS256', typ: 'JWT' };
  const valid = jwt.sign({ sub: 'u1', exp: now + 60 }, SECRET, { algorithm: 'HS256' });
  const [h, p, s] = valid.split('.') as [string, string, string];

  const cases: [string, string, 'ok' | Hs256Refusal][] = [
    ['signed by jsonwebtoken', valid, 'ok'],
    ['with iat and an nbf in the past', jwt.sign({ sub: 'u', exp: now + 60, nbf: now - 10 }, SECRET), 'ok'],
    ['expired within the tolerance', forge(hs, { sub: 'u', exp: now - 3 }), 'ok'],
    ['expired', forge(hs, { sub: 'u', exp: now - 60 }), 'expired'],
    ['expired at exactly the tolerance', forge(hs, { sub: 'u', exp: now - TOLERANCE }), 'expired'],
    ['not yet valid', forge(hs, { sub: 'u', exp: now + 600, nbf: now + 60 }), 'not-yet-valid'],
    ['nbf within the tolerance', forge(hs, { sub: 'u', exp: now + 600, nbf: now + 3 }), 'ok'],
    ['without exp (the service refuses it, not the signature check)', forge(hs, { sub: 'u' }), 'ok'],
    ['another secret', jwt.sign({ sub: 'u', exp: now + 60 }, 'another-secret-of-thirty-two-bytes'), 'invalid'],
    ['alg none', jwt.sign({ sub: 'u', exp: now + 60 }, '', { algorithm: 'none' }), 'invalid'],
    ['alg none with a signature', forge({ alg: 'none' }, { sub: 'u', exp: now + 60 }), 'invalid'],
    ['HS512 header, HS256 signature', forge({ alg: 'HS512' }, { sub: 'u', exp: now + 60 }), 'invalid'],
    ['RS256 header, HMAC signature', forge({ alg: 'RS256' }, { sub: 'u', exp: now + 60 }), 'invalid'],
    ['no alg', forge({ typ: 'JWT' }, { sub: 'u', exp: now + 60 }), 'invalid'],
    ['payload tampered', `${h}.${b64({ sub: 'admin', exp: now + 60 })}.${s}`, 'invalid'],
    ['header tampered', `${b64({ alg: 'HS256', kid: 'x' })}.${p}.${s}`, 'invalid'],
    ['signature cut short', `${h}.${p}.${s.slice(0, -2)}`, 'invalid'],
    ['signature padded', `${h}.${p}.${s}=`, 'invalid'],
    ['no signature', `${h}.${p}.`, 'invalid'],
    ['two segments', `${h}.${p}`, 'invalid'],
    ['four segments', `${valid}.${s}`, 'invalid'],
    ['empty', '', 'invalid'],
    ['spaces', ` ${valid}`, 'invalid'],
    ['base64 with + and /', `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}x+/`, 'invalid'],
    ['a header that is no JSON', `${b64('not json')}.${p}.${s}`, 'invalid'],
    ['a payload that is a JSON string', forge(hs, '"just text"'), 'invalid'],
    ['a payload that is null', forge(hs, 'null'), 'invalid'],
    ['a payload that is no JSON', forge(hs, 'sub=u'), 'invalid'],
    ['exp as text', forge(hs, { sub: 'u', exp: String(now + 60) }), 'invalid'],
    ['nbf as text', forge(hs, { sub: 'u', exp: now + 60, nbf: 'soon' }), 'invalid'],
  ];

  it.each(cases)('%s: as jsonwebtoken decides', (_, token, expected) => {
    expect(reference(token)).toBe(expected);
    expect(outcome(token)).toBe(expected);
  });

  it('refuses a payload that is a JSON array, which jsonwebtoken takes for claims (and the service then refused for no "sub")', () => {
    const token = forge(hs, [1, 2]);
    expect(reference(token)).toBe('ok');
    expect(outcome(token)).toBe('invalid');
  });

  it('gives the claims of a valid token', () => {
    expect(verifyHs256(valid, KEY, now, TOLERANCE)).toEqual({ ok: true, claims: jwt.decode(valid) });
  });

  it('agrees with jsonwebtoken on every one-character change of a valid token', () => {
    let changed = 0;
    for (let i = 0; i < valid.length; i++) {
      for (const c of ['A', '_', '.', '-', '0']) {
        if (valid[i] === c) continue;
        const token = valid.slice(0, i) + c + valid.slice(i + 1);
        expect([i, c, outcome(token)]).toEqual([i, c, reference(token)]);
        changed++;
      }
    }
    expect(changed).toBeGreaterThan(valid.length * 4 - 1);
  });
});
