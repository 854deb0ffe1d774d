import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/** Decides whether the hop at `addr` is a proxy whose forwarding headers are believed. */
export type ProxyTrust = (addr: string, hop: number) => boolean;

/** Compiles `HERALD_TRUSTED_PROXIES`; an empty list trusts nobody. */
export function compileProxyTrust(trusted: readonly string[]): ProxyTrust {
  if (trusted.length === 0) return () => false;
  return proxyaddr.compile([...trusted]);
}

/**
 * The address of the client behind any trusted proxies: `X-Forwarded-For` is
 * walked from the right while the hop is trusted, so a client cannot forge
 * its address by sending the header itself (the same rule Express applies
 * with `trust proxy`). IPv4-mapped IPv6 addresses are shown as IPv4.
 */
export function clientAddress(request: IncomingMessage, trust: ProxyTrust): string {
  if (!request.socket.remoteAddress) return 'unknown';
  return unmapIPv4(proxyaddr(request, trust));
}

function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
