import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/** Decides whether the hop at `addr` is a proxy whose forwarding headers are believed. */
export type ProxyTrust = (addr: string, hop: number) => boolean;

/** Addresses whose trust is remembered (`compileProxyTrust`); past this many, the memory starts over. */
const REMEMBERED_ADDRESSES = 1024;

/**
 * Compiles `HERALD_TRUSTED_PROXIES`; an empty list trusts nobody. The answer for each address is
 * remembered: every upgrade asks it of its peer (a handful of proxies, as a rule), and proxy-addr parses
 * the address anew at every call (a cost in a reconnect storm: docs/performance.md, section 16). The rules
 * do not depend on the hop, so neither does the memory.
 */
export function compileProxyTrust(trusted: readonly string[]): ProxyTrust {
  if (trusted.length === 0) return () => false;
  const rules = proxyaddr.compile([...trusted]);
  const known = new Map<string, boolean>();
  return (addr, hop) => {
    let trustedAddress = known.get(addr);
    if (trustedAddress === undefined) {
      trustedAddress = rules(addr, hop);
      if (known.size >= REMEMBERED_ADDRESSES) known.clear();
      known.set(addr, trustedAddress);
    }
    return trustedAddress;
  };
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
