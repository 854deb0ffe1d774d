import jwt from 'jsonwebtoken';
import type { HeraldConfig } from '../config/config.schema';
import { UserTokenService } from './user-token.service';

// Nest 12 is ESM only and the unit tier does not load it: its decorators do nothing here.
jest.mock('@nestjs/common', () => ({ Inject: () => () => undefined, Injectable: () => () => undefined }));
jest.mock('../config/config.module', () => ({ HERALD_CONFIG: 'HERALD_CONFIG' }));

const SECRET = 'a-test-secret-of-thirty-two-bytes!!';

function service(secret = SECRET): UserTokenService {
  return new UserTokenService({ jwtSecret: secret } as HeraldConfig);
}

describe('UserTokenService', () => {
  it('verifies a token it signed, naming the user and the expiry', () => {
    const { token, expiresAt } = service().sign('user-1', 60);
    expect(service().verify(token)).toEqual({
      ok: true,
      principal: { userId: 'user-1', expiresAt: expiresAt.getTime() / 1000 },
    });
  });

  it('verifies a token signed elsewhere with the same secret as a string', () => {
    const token = jwt.sign({ sub: 'user-2', exp: Math.floor(Date.now() / 1000) + 60 }, SECRET, { algorithm: 'HS256' });
    expect(service().verify(token)).toMatchObject({ ok: true, principal: { userId: 'user-2' } });
  });

  it('refuses a token signed with another secret, an expired one, and alg none', () => {
    const now = Math.floor(Date.now() / 1000);
    const other = jwt.sign({ sub: 'u', exp: now + 60 }, 'another-secret-of-thirty-two-bytes', { algorithm: 'HS256' });
    const expired = jwt.sign({ sub: 'u', exp: now - 60 }, SECRET, { algorithm: 'HS256' });
    const none = jwt.sign({ sub: 'u', exp: now + 60 }, '', { algorithm: 'none' });
    expect(service().verify(other)).toEqual({ ok: false, reason: 'invalid token' });
    expect(service().verify(expired)).toEqual({ ok: false, reason: 'token expired' });
    expect(service().verify(none)).toEqual({ ok: false, reason: 'invalid token' });
  });
});
