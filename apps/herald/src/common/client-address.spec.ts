import type { IncomingMessage } from 'node:http';
import { clientAddress, compileProxyTrust } from './client-address';

function request(remoteAddress: string | undefined, headers: Record<string, string> = {}): IncomingMessage {
  const socket = { remoteAddress };
  return { socket, connection: socket, headers } as unknown as IncomingMessage;
}

describe('clientAddress', () => {
  it('is the socket peer when nobody is trusted, whatever the headers say', () => {
    const trust = compileProxyTrust([]);
    expect(clientAddress(request('10.0.0.5', { 'x-forwarded-for': '1.2.3.4' }), trust)).toBe('10.0.0.5');
  });

  it('takes the forwarded address from a trusted proxy', () => {
    const trust = compileProxyTrust(['127.0.0.1']);
    expect(clientAddress(request('127.0.0.1', { 'x-forwarded-for': '203.0.113.7' }), trust)).toBe('203.0.113.7');
  });

  it('ignores forwarding headers from an untrusted peer', () => {
    const trust = compileProxyTrust(['127.0.0.1']);
    expect(clientAddress(request('127.0.0.3', { 'x-forwarded-for': '6.6.6.6' }), trust)).toBe('127.0.0.3');
  });

  it('stops at the first untrusted hop from the right, so a forged left part is not believed', () => {
    const trust = compileProxyTrust(['10.0.0.0/8']);
    const forged = request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 198.51.100.9, 10.0.0.1' });
    expect(clientAddress(forged, trust)).toBe('198.51.100.9');
  });

  it('shows IPv4-mapped IPv6 peers as IPv4 and survives a socket without an address', () => {
    const trust = compileProxyTrust(['loopback']);
    expect(clientAddress(request('::ffff:127.0.0.1', { 'x-forwarded-for': '::ffff:192.0.2.1' }), trust)).toBe(
      '192.0.2.1',
    );
    expect(clientAddress(request(undefined), trust)).toBe('unknown');
  });

  it('answers the same for an address asked again, also once more addresses were asked than it remembers', () => {
    const trust = compileProxyTrust(['10.0.0.0/8']);
    expect([trust('10.1.2.3', 0), trust('10.1.2.3', 1), trust('192.0.2.1', 0), trust('192.0.2.1', 0)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    for (let i = 0; i < 3000; i++) trust(`172.16.${i >> 8}.${i & 255}`, 0);
    expect([trust('10.1.2.3', 0), trust('192.0.2.1', 0), trust('10.255.0.1', 0)]).toEqual([true, false, true]);
  });
});
