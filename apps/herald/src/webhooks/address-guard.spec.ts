import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { startDnsServer } from '../../../../test/helpers/dns-server';
import {
  ADDRESS_REFUSED,
  AddressGuard,
  checkTarget,
  dnsServerResolver,
  guardedLookup,
  parseCidr,
  systemResolver,
  type Resolve,
  type ResolvedAddress,
} from './address-guard';

/** A resolver that answers `addresses` for every name and records the names asked. */
function fixedResolver(...addresses: string[]): Resolve & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    asked.push(hostname);
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { asked });
}

interface LookupResult {
  address: string | LookupAddress[];
  family: number | undefined;
}

function lookup(fn: LookupFunction, hostname: string, options: LookupOptions): Promise<LookupResult> {
  return new Promise((resolve, reject) => {
    fn(hostname, options, (error, address, family) => (error ? reject(error) : resolve({ address, family })));
  });
}

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 ranges, and a bare address as a single host', () => {
    expect(parseCidr('10.1.0.0/16')).toEqual({ address: '10.1.0.0', prefix: 16, family: 'ipv4' });
    expect(parseCidr(' ::1/128 ')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseCidr('127.0.0.1')).toEqual({ address: '127.0.0.1', prefix: 32, family: 'ipv4' });
    expect(parseCidr('fd00::')).toEqual({ address: 'fd00::', prefix: 128, family: 'ipv6' });
  });

  it('turns an IPv4-mapped IPv6 range into its IPv4 range', () => {
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('::ffff:0:0/95')).toBe('an IPv4-mapped range needs a prefix of 96-128 (write it as IPv4)');
  });

  it('names what is wrong with a bad entry', () => {
    expect(parseCidr('10.0.0.0/33')).toBe('prefix must be 0-32 for IPv4');
    expect(parseCidr('::/129')).toBe('prefix must be 0-128 for IPv6');
    expect(parseCidr('10.0.0.0/')).toBe('prefix must be 0-32 for IPv4');
    expect(parseCidr('10.0.0.0/-1')).toBe('prefix must be 0-32 for IPv4');
    expect(parseCidr('10.0.0/8')).toBe('"10.0.0" is not an IPv4 or IPv6 address');
    expect(parseCidr('example.test/8')).toBe('"example.test" is not an IPv4 or IPv6 address');
    expect(parseCidr('')).toBe('"" is not an IPv4 or IPv6 address');
  });
});

describe('AddressGuard', () => {
  const guard = new AddressGuard([]);

  it.each([
    ['127.0.0.1', '127.0.0.1 is a loopback address (127.0.0.0/8)'],
    ['127.255.0.9', '127.255.0.9 is a loopback address (127.0.0.0/8)'],
    ['::1', '::1 is a loopback address (::1/128)'],
    ['10.0.0.1', '10.0.0.1 is a private address (10.0.0.0/8)'],
    ['172.31.255.255', '172.31.255.255 is a private address (172.16.0.0/12)'],
    ['192.168.1.1', '192.168.1.1 is a private address (192.168.0.0/16)'],
    ['fd12:3456::1', 'fd12:3456::1 is a unique local address (fc00::/7)'],
    ['fd00:ec2::254', 'fd00:ec2::254 is a unique local, cloud metadata address (fc00::/7)'],
    ['169.254.1.1', '169.254.1.1 is a link-local address (169.254.0.0/16)'],
    ['169.254.169.254', '169.254.169.254 is a link-local, cloud metadata address (169.254.0.0/16)'],
    ['fe80::1', 'fe80::1 is a link-local address (fe80::/10)'],
    ['fe80::1%eth0', 'fe80::1%eth0 is a link-local address (fe80::/10)'],
    ['100.64.0.1', '100.64.0.1 is a carrier-grade NAT address (100.64.0.0/10)'],
    ['0.0.0.0', '0.0.0.0 is an unspecified address (0.0.0.0/8)'],
    ['::', ':: is an unspecified address (::/128)'],
    ['224.0.0.1', '224.0.0.1 is a multicast address (224.0.0.0/4)'],
    ['239.255.255.250', '239.255.255.250 is a multicast address (224.0.0.0/4)'],
    ['ff02::1', 'ff02::1 is a multicast address (ff00::/8)'],
    ['255.255.255.255', '255.255.255.255 is the broadcast address (255.255.255.255/32)'],
    ['192.0.0.192', '192.0.0.192 is an IETF protocol, cloud metadata address (192.0.0.0/24)'],
    ['198.18.0.1', '198.18.0.1 is a benchmarking address (198.18.0.0/15)'],
    ['240.0.0.1', '240.0.0.1 is a reserved address (240.0.0.0/4)'],
    ['::7f00:1', '::7f00:1 is an IPv4-compatible address (::/96)'],
    ['64:ff9b:1::a00:1', '64:ff9b:1::a00:1 is a local NAT64 address (64:ff9b:1::/48)'],
    ['not-an-ip', 'not-an-ip is not an IP address'],
  ])('refuses %s by default', (address, reason) => {
    expect(guard.refusal(address)).toBe(reason);
  });

  it('lets public addresses through, also those just outside a refused range', () => {
    const open = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '192.169.0.1', '11.0.0.1'];
    const open6 = ['2606:4700:4700::1111', '2001:db8::1', 'fbff::1', 'fec0::1', '::ffff:8.8.8.8'];
    expect([...open, ...open6].map((address) => guard.refusal(address))).toEqual([...open, ...open6].map(() => null));
  });

  it('judges an IPv4-mapped IPv6 address, in either notation, as the IPv4 address it maps', () => {
    expect(guard.refusal('::ffff:10.0.0.1')).toBe('::ffff:10.0.0.1 (10.0.0.1) is a private address (10.0.0.0/8)');
    expect(guard.refusal('::ffff:7f00:1')).toBe('::ffff:7f00:1 (127.0.0.1) is a loopback address (127.0.0.0/8)');
    expect(guard.refusal('0:0:0:0:0:FFFF:A9FE:A9FE')).toBe(
      '0:0:0:0:0:FFFF:A9FE:A9FE (169.254.169.254) is a link-local, cloud metadata address (169.254.0.0/16)',
    );
  });

  it("judges NAT64's well-known prefix as the IPv4 address it translates to", () => {
    expect(guard.refusal('64:ff9b::10.0.0.1')).toBe('64:ff9b::10.0.0.1 (10.0.0.1) is a private address (10.0.0.0/8)');
    expect(guard.refusal('64:ff9b::808:808')).toBeNull();
  });

  it('allows what the operator allowed, and only that', () => {
    const allowing = new AddressGuard(['127.0.0.1/32', '10.1.0.0/16', '::1/128']);
    expect(['127.0.0.1', '::ffff:127.0.0.1', '10.1.200.3', '::1'].map((a) => allowing.refusal(a))).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(allowing.refusal('127.0.0.2')).toBe('127.0.0.2 is a loopback address (127.0.0.0/8)');
    expect(allowing.refusal('10.2.0.1')).toBe('10.2.0.1 is a private address (10.0.0.0/8)');
  });

  it('refuses to start with a bad allowed CIDR, naming it', () => {
    expect(() => new AddressGuard(['127.0.0.1/32', '10.0.0.0/33'])).toThrow(
      'allowed CIDR "10.0.0.0/33": prefix must be 0-32 for IPv4',
    );
  });
});

describe('guardedLookup', () => {
  const guard = new AddressGuard([]);

  it('answers the first address when Node asks for one', async () => {
    const fn = guardedLookup(guard, fixedResolver('2001:db8::1', '93.184.215.14'));
    await expect(lookup(fn, 'api.example.test', {})).resolves.toEqual({ address: '2001:db8::1', family: 6 });
  });

  it('answers every address when Node asks with all: true (autoSelectFamily)', async () => {
    const fn = guardedLookup(guard, fixedResolver('2001:db8::1', '93.184.215.14'));
    await expect(lookup(fn, 'api.example.test', { all: true })).resolves.toEqual({
      address: [
        { address: '2001:db8::1', family: 6 },
        { address: '93.184.215.14', family: 4 },
      ],
      family: undefined,
    });
  });

  it('keeps to the family Node asks for', async () => {
    const fn = guardedLookup(guard, fixedResolver('2001:db8::1', '93.184.215.14'));
    await expect(lookup(fn, 'api.example.test', { family: 4 })).resolves.toEqual({
      address: '93.184.215.14',
      family: 4,
    });
    await expect(lookup(fn, 'api.example.test', { family: 'IPv6', all: true })).resolves.toEqual({
      address: [{ address: '2001:db8::1', family: 6 }],
      family: undefined,
    });
    const v4only = guardedLookup(guard, fixedResolver('93.184.215.14'));
    await expect(lookup(v4only, 'api.example.test', { family: 6 })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('refuses the host when any of its addresses is refused, in both shapes', async () => {
    const fn = guardedLookup(guard, fixedResolver('93.184.215.14', '10.0.0.1'));
    const refused = {
      code: ADDRESS_REFUSED,
      message:
        'api.example.test resolves to 10.0.0.1, a private address (10.0.0.0/8); ' +
        'set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
    };
    await expect(lookup(fn, 'api.example.test', {})).rejects.toMatchObject(refused);
    await expect(lookup(fn, 'api.example.test', { all: true })).rejects.toMatchObject(refused);
  });

  it('passes a resolver failure on as it is', async () => {
    const failure = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    const fn = guardedLookup(guard, () => Promise.reject(failure));
    await expect(lookup(fn, 'nowhere.test', {})).rejects.toBe(failure);
  });

  it('judges a literal IP itself, without the resolver', async () => {
    const resolve = fixedResolver('93.184.215.14');
    const fn = guardedLookup(guard, resolve);
    await expect(lookup(fn, '127.0.0.1', {})).rejects.toMatchObject({
      code: ADDRESS_REFUSED,
      message: '127.0.0.1 is a loopback address (127.0.0.0/8); set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
    });
    await expect(lookup(fn, '93.184.215.14', {})).resolves.toEqual({ address: '93.184.215.14', family: 4 });
    expect(resolve.asked).toEqual([]);
  });
});

describe('checkTarget', () => {
  const guard = new AddressGuard([]);

  it('judges a literal IP host directly, IPv6 brackets and mapped forms included', async () => {
    const resolve = fixedResolver('93.184.215.14');
    await expect(checkTarget(new URL('http://127.0.0.1:8080/hook'), guard, resolve)).resolves.toBe(
      '127.0.0.1 is a loopback address (127.0.0.0/8); set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
    );
    await expect(checkTarget(new URL('https://[::1]/hook'), guard, resolve)).resolves.toMatch(/^::1 is a loopback/);
    await expect(checkTarget(new URL('https://[::ffff:169.254.169.254]/'), guard, resolve)).resolves.toMatch(
      /^::ffff:a9fe:a9fe \(169\.254\.169\.254\) is a link-local, cloud metadata address/,
    );
    // The URL parser normalizes other spellings of an IPv4 address: 0x7f.1 is 127.0.0.1.
    await expect(checkTarget(new URL('http://0x7f.1/'), guard, resolve)).resolves.toMatch(
      /^127\.0\.0\.1 is a loopback/,
    );
    await expect(checkTarget(new URL('https://93.184.215.14/'), guard, resolve)).resolves.toBeNull();
    expect(resolve.asked).toEqual([]);
  });

  it('resolves a name and judges every address', async () => {
    await expect(checkTarget(new URL('https://hooks.example.test/'), guard, fixedResolver('8.8.8.8'))).resolves.toBe(
      null,
    );
    await expect(
      checkTarget(new URL('https://hooks.example.test/'), guard, fixedResolver('8.8.8.8', '192.168.0.10')),
    ).resolves.toBe(
      'hooks.example.test resolves to 192.168.0.10, a private address (192.168.0.0/16); ' +
        'set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
    );
  });

  it('refuses a scheme other than http and https', async () => {
    await expect(checkTarget(new URL('ftp://8.8.8.8/'), guard, fixedResolver())).resolves.toBe(
      'only http: and https: URLs are allowed, not ftp:',
    );
  });

  it("throws the resolver's error for a name that does not resolve", async () => {
    const failure = Object.assign(new Error('nowhere'), { code: 'ENOTFOUND' });
    await expect(checkTarget(new URL('https://nowhere.test/'), guard, () => Promise.reject(failure))).rejects.toBe(
      failure,
    );
  });
});

describe('dnsServerResolver', () => {
  it('resolves through the given DNS server, which can point a name at the metadata service', async () => {
    const dns = await startDnsServer({ 'meta.test': '169.254.169.254', 'Public.Test.': '93.184.215.14' });
    try {
      const resolve = dnsServerResolver(`127.0.0.1:${dns.port}`);
      await expect(resolve('meta.test')).resolves.toEqual([{ address: '169.254.169.254', family: 4 }]);
      await expect(resolve('public.test')).resolves.toEqual([{ address: '93.184.215.14', family: 4 }]);
      await expect(resolve('unknown.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
      await expect(checkTarget(new URL('http://meta.test/'), new AddressGuard([]), resolve)).resolves.toBe(
        'meta.test resolves to 169.254.169.254, a link-local, cloud metadata address (169.254.0.0/16); ' +
          'set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
      );
      // TTL 0: a changed record (DNS rebinding) is seen at the next lookup.
      dns.set('public.test', '10.0.0.1');
      await expect(resolve('public.test')).resolves.toEqual([{ address: '10.0.0.1', family: 4 }]);
    } finally {
      await dns.close();
    }
  });
});

describe('systemResolver', () => {
  it("answers the operating system's addresses for a name", async () => {
    const addresses = await systemResolver('localhost');
    expect(addresses.length).toBeGreaterThan(0);
    expect(addresses.every(({ address }) => address === '::1' || address.startsWith('127.'))).toBe(true);
  });
});
