import { promises as dns, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * The guard against server-side request forgery for webhook deliveries: a publisher names the URL, so
 * without it Herald would POST to its own loopback, the private network or the cloud metadata service.
 * Addresses are judged after resolution, at connect time (`guardedLookup`), so a name that resolves
 * differently at registration and at delivery (DNS rebinding) is still caught.
 */

/** The setting an operator changes to let deliveries reach a refused range (named in every refusal). */
export const ALLOWED_CIDRS_SETTING = 'HERALD_WEBHOOK_ALLOWED_CIDRS';

/** The `code` of the error a guarded lookup fails with, so a caller can tell a refusal from a network error. */
export const ADDRESS_REFUSED = 'ERR_WEBHOOK_ADDRESS_REFUSED';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Why an address is refused: `subject` is the address as given (with its IPv4 form when it embeds one). */
export interface Refusal {
  subject: string;
  /** What the address is and the range it is in: "a private address (10.0.0.0/8)". */
  reason: string;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has; injected so tests and e2e runs control the answers. */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>;

interface BlockedRange {
  cidr: string;
  what: string;
}

/** Refused unless allowed: every range a webhook has no business reaching from inside Herald's network. */
const BLOCKED_RANGES: readonly BlockedRange[] = [
  { cidr: '0.0.0.0/8', what: 'an unspecified address' },
  { cidr: '10.0.0.0/8', what: 'a private address' },
  { cidr: '100.64.0.0/10', what: 'a carrier-grade NAT address' },
  { cidr: '127.0.0.0/8', what: 'a loopback address' },
  { cidr: '169.254.0.0/16', what: 'a link-local address' },
  { cidr: '172.16.0.0/12', what: 'a private address' },
  { cidr: '192.0.0.0/24', what: 'an IETF protocol address' },
  { cidr: '192.168.0.0/16', what: 'a private address' },
  { cidr: '198.18.0.0/15', what: 'a benchmarking address' },
  { cidr: '224.0.0.0/4', what: 'a multicast address' },
  { cidr: '255.255.255.255/32', what: 'the broadcast address' },
  { cidr: '240.0.0.0/4', what: 'a reserved address' },
  { cidr: '::/128', what: 'an unspecified address' },
  { cidr: '::1/128', what: 'a loopback address' },
  { cidr: '::/96', what: 'an IPv4-compatible address' },
  { cidr: '64:ff9b:1::/48', what: 'a local NAT64 address' },
  { cidr: 'fc00::/7', what: 'a unique local address' },
  { cidr: 'fe80::/10', what: 'a link-local address' },
  { cidr: 'ff00::/8', what: 'a multicast address' },
];

/**
 * The instance metadata services (AWS, GCP, Azure, OpenStack at 169.254.169.254; Oracle's legacy one;
 * AWS's IPv6 one): named in refusals.
 */
const CLOUD_METADATA = ['169.254.169.254', '192.0.0.192', 'fd00:ec2::254'];

/**
 * Parses `10.1.0.0/16`, `::1/128` or a bare address (a single host). Answers an error message instead
 * for a bad one, so config validation can name every bad entry. An IPv4-mapped IPv6 range is turned into
 * its IPv4 range, because mapped addresses are judged as IPv4.
 */
export function parseCidr(text: string): Cidr | string {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const address = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `"${address}" is not an IPv4 or IPv6 address`;
  const longest = version === 4 ? 32 : 128;
  let prefix = longest;
  if (slash !== -1) {
    const digits = trimmed.slice(slash + 1);
    if (!/^\d{1,3}$/.test(digits) || Number(digits) > longest) return `prefix must be 0-${longest} for IPv${version}`;
    prefix = Number(digits);
  }
  if (version === 4) return { address, prefix, family: 'ipv4' };
  const mapped = embeddedIPv4(address);
  if (mapped?.kind === 'mapped') {
    if (prefix < 96) return `an IPv4-mapped range needs a prefix of 96-128 (write it as IPv4)`;
    return { address: mapped.ipv4, prefix: prefix - 96, family: 'ipv4' };
  }
  return { address, prefix, family: 'ipv6' };
}

/** Judges addresses against the refused ranges, minus the ranges an operator allowed. */
export class AddressGuard {
  private readonly allowed = new BlockList();
  private readonly blocked = BLOCKED_RANGES.map(({ cidr, what }) => ({ cidr, what, list: subnetList(cidr) }));
  private readonly metadata = new BlockList();

  /** @throws when an entry of `allowedCidrs` is not a CIDR (`parseCidr` names what is wrong). */
  constructor(allowedCidrs: readonly string[] = []) {
    for (const text of allowedCidrs) {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') throw new Error(`allowed CIDR "${text}": ${cidr}`);
      this.allowed.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    for (const address of CLOUD_METADATA) this.metadata.addAddress(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
  }

  /** Null when `address` may be contacted; otherwise a short reason: "127.0.0.1 is a loopback address (127.0.0.0/8)". */
  refusal(address: string): string | null {
    const refused = this.judge(address);
    return refused && `${refused.subject} is ${refused.reason}`;
  }

  /** The parts of a refusal, for messages that phrase it their own way (`guardedLookup`). */
  judge(address: string): Refusal | null {
    // A zone id (fe80::1%eth0) is not part of the address, and BlockList does not match with one.
    const bare = address.split('%', 1)[0] ?? '';
    const version = isIP(bare);
    if (version === 0) return { subject: address, reason: 'not an IP address' };
    const embedded = version === 6 ? embeddedIPv4(bare) : undefined;
    const judged = embedded ? embedded.ipv4 : bare;
    const family = embedded || version === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(judged, family) || (embedded && this.allowed.check(bare, 'ipv6'))) return null;
    const range = this.blocked.find(({ list }) => list.check(judged, family));
    if (!range) return null;
    const what = this.metadata.check(judged, family)
      ? range.what.replace(/ address$/, ', cloud metadata address')
      : range.what;
    return { subject: embedded ? `${address} (${embedded.ipv4})` : address, reason: `${what} (${range.cidr})` };
  }
}

/** Thrown (as a lookup error) when a host resolves to a refused address. */
export class AddressRefusedError extends Error {
  readonly code = ADDRESS_REFUSED;

  constructor(
    readonly hostname: string,
    message: string,
  ) {
    super(message);
    this.name = 'AddressRefusedError';
  }
}

/**
 * A `lookup` for `http.request` that refuses the connection when ANY address of the host is refused (a
 * name that mixes public and private answers is not trusted with either). Node 20 asks with `all: true`
 * when it tries address families in turn (`autoSelectFamily`, on by default) and for one address otherwise.
 */
export function guardedLookup(guard: AddressGuard, resolve: Resolve): LookupFunction {
  return (hostname, options, callback) => {
    const wanted = familyNumber(options.family);
    void resolveGuarded(hostname, guard, resolve).then(
      (addresses) => {
        const usable = wanted === 0 ? addresses : addresses.filter((entry) => entry.family === wanted);
        const first = usable[0];
        if (!first) {
          callback(notFound(hostname, `no IPv${wanted} address`), options.all ? [] : '');
        } else if (options.all) {
          const all: LookupAddress[] = usable.map(({ address, family }) => ({ address, family }));
          callback(null, all);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, options.all ? [] : ''),
    );
  };
}

/**
 * Judges a webhook URL before it is saved, for an early and clear error: a literal IP host (which Node
 * connects to without any lookup) directly, a name by resolving it. Answers the refusal, or null.
 * @throws the resolver's error when the name does not resolve (the caller decides whether that blocks).
 */
export async function checkTarget(url: URL, guard: AddressGuard, resolve: Resolve): Promise<string | null> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `only http: and https: URLs are allowed, not ${url.protocol}`;
  }
  try {
    await resolveGuarded(hostOf(url), guard, resolve);
    return null;
  } catch (error) {
    if (error instanceof AddressRefusedError) return error.message;
    throw error;
  }
}

/** The host of a URL as `net` takes it: an IPv6 literal without its brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** The operating system's resolver (getaddrinfo: /etc/hosts, then DNS), in the order it answers. */
export const systemResolver: Resolve = async (hostname) => {
  const found = await dns.lookup(hostname, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

/**
 * Asks one DNS server (`127.0.0.1:5353`, `[::1]:53`) for A and AAAA records, bypassing /etc/hosts: e2e
 * tests point it at a local server to make names resolve to addresses they choose.
 */
export function dnsServerResolver(server: string): Resolve {
  const resolver = new dns.Resolver();
  resolver.setServers([server]);
  return async (hostname) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)]);
    const addresses: ResolvedAddress[] = [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 as const })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 as const })) : []),
    ];
    if (addresses.length > 0) return addresses;
    // Either family missing is an ordinary answer; any other failure (a timeout, a refusal) is reported.
    const failure = [v4, v6].find(
      (result): result is PromiseRejectedResult =>
        result.status === 'rejected' && !NO_ADDRESS_CODES.has((result.reason as NodeJS.ErrnoException).code ?? ''),
    );
    throw failure ? (failure.reason as Error) : notFound(hostname, 'no A or AAAA record');
  };
}

const NO_ADDRESS_CODES = new Set<string>([dns.NODATA, dns.NOTFOUND]);

/** Every address of `hostname` (itself when it is an IP literal), refused as a whole if any one is. */
async function resolveGuarded(hostname: string, guard: AddressGuard, resolve: Resolve): Promise<ResolvedAddress[]> {
  const version = isIP(hostname);
  if (version !== 0) {
    const refused = guard.judge(hostname);
    if (refused) throw new AddressRefusedError(hostname, `${refused.subject} is ${refused.reason}${ALLOW_HINT}`);
    return [{ address: hostname, family: version === 6 ? 6 : 4 }];
  }
  const addresses = await resolve(hostname);
  if (addresses.length === 0) throw notFound(hostname, 'no address');
  for (const { address } of addresses) {
    const refused = guard.judge(address);
    if (refused) {
      throw new AddressRefusedError(
        hostname,
        `${hostname} resolves to ${refused.subject}, ${refused.reason}${ALLOW_HINT}`,
      );
    }
  }
  return addresses;
}

const ALLOW_HINT = `; set ${ALLOWED_CIDRS_SETTING} to allow it`;

function notFound(hostname: string, detail: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${hostname}: ${detail} (ENOTFOUND)`), { code: 'ENOTFOUND', hostname });
}

function familyNumber(family: number | 'IPv4' | 'IPv6' | undefined): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

function subnetList(cidr: string): BlockList {
  const parsed = parseCidr(cidr);
  if (typeof parsed === 'string') throw new Error(`blocked range ${cidr}: ${parsed}`);
  const list = new BlockList();
  list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  return list;
}

/**
 * The IPv4 address inside an IPv6 one that carries it: IPv4-mapped (`::ffff:10.0.0.1`, `::ffff:a00:1`),
 * which a dual-stack socket connects to as IPv4, and NAT64's well-known prefix (`64:ff9b::10.0.0.1`), which
 * a NAT64 gateway translates to it. Either would otherwise slip a private IPv4 address past the IPv6 ranges.
 */
function embeddedIPv4(ipv6: string): { kind: 'mapped' | 'nat64'; ipv4: string } | undefined {
  const groups = ipv6Groups(ipv6);
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups;
  const ipv4 = `${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return { kind: 'mapped', ipv4 };
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return { kind: 'nat64', ipv4 };
  return undefined;
}

/** The eight 16-bit groups of a valid IPv6 address (checked with `isIP` first). */
function ipv6Groups(ipv6: string): number[] {
  let text = ipv6;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const parse = (part: string): number[] => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const front = parse(head);
  const back = rest === undefined ? [] : parse(rest);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}
