import { Realm } from './bearer';
import { errorHeaders } from './error-headers';
import { ForbiddenError, HTTP_STATUS, RateLimitedError, UnauthorizedError, UpgradeRequiredError } from './errors';

describe('errorHeaders', () => {
  it('challenges a 401 without a credential with Bearer realm="herald" and no error (RFC 6750 §3)', () => {
    const error = new UnauthorizedError('Missing token', { realm: Realm.Herald });
    expect(errorHeaders(error, 401)).toEqual({ 'WWW-Authenticate': 'Bearer realm="herald"' });
  });

  it('names invalid_token when a credential was sent and is wrong', () => {
    const error = new UnauthorizedError('unknown API key', { realm: Realm.Herald, invalidToken: true });
    expect(errorHeaders(error, 401)).toEqual({ 'WWW-Authenticate': 'Bearer realm="herald", error="invalid_token"' });
  });

  it("challenges a wrong admin password in the login's realm, without an error", () => {
    const error = new UnauthorizedError('wrong password', { realm: Realm.AdminLogin });
    expect(errorHeaders(error, 401)).toEqual({ 'WWW-Authenticate': 'Bearer realm="herald-admin"' });
  });

  it('challenges a 401 that is not a domain error too', () => {
    expect(errorHeaders(new Error('unauthorized'), 401)).toEqual({ 'WWW-Authenticate': 'Bearer realm="herald"' });
  });

  it('names the protocol and version to upgrade to on a 426 (RFC 6455 §4.2.2)', () => {
    const error = new UpgradeRequiredError();
    expect(HTTP_STATUS[error.code]).toBe(426);
    expect(errorHeaders(error, 426)).toEqual({
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Version': '13',
    });
  });

  it('adds no challenge to other refusals', () => {
    expect(errorHeaders(new ForbiddenError('Origin not allowed'), 403)).toEqual({});
    expect(errorHeaders(new RateLimitedError('slow down', 7), 429)).toEqual({ 'Retry-After': '7' });
  });

  it("adds a publisher refusal's RateLimit fields", () => {
    const fields = { policy: '"notifications";q=200;w=2', current: '"notifications";r=0;t=1' };
    expect(errorHeaders(new RateLimitedError('over', 1, fields), 429)).toEqual({
      'Retry-After': '1',
      'RateLimit-Policy': '"notifications";q=200;w=2',
      RateLimit: '"notifications";r=0;t=1',
    });
  });
});
