import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv4 } from 'node:net';

/**
 * A tiny authoritative DNS server over UDP for e2e tests: it makes webhook host names resolve to chosen
 * IPv4 addresses (a private one, the metadata service) through Herald's real resolver path
 * (`dnsServerResolver`). Answers A queries for known names with TTL 0 (so a changed record is seen at
 * once, as in DNS rebinding), NOERROR without answers for any other type of a known name, NXDOMAIN
 * for an unknown one. Queries it cannot parse are dropped.
 */
export interface DnsServer {
  port: number;
  /** Points `name` at `ipv4`, or removes it (then NXDOMAIN), while the server runs. */
  set(name: string, ipv4: string | undefined): void;
  close(): Promise<void>;
}

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_NXDOMAIN = 3;
const HEADER_BYTES = 12;

export async function startDnsServer(records: Record<string, string>): Promise<DnsServer> {
  const known = new Map<string, string>();
  const set = (name: string, ipv4: string | undefined): void => {
    if (ipv4 === undefined) {
      known.delete(normalize(name));
      return;
    }
    if (!isIPv4(ipv4)) throw new Error(`startDnsServer: ${name} → "${ipv4}" is not an IPv4 address`);
    known.set(normalize(name), ipv4);
  };
  for (const [name, ipv4] of Object.entries(records)) set(name, ipv4);

  const socket = createSocket('udp4');
  socket.on('message', (query: Buffer, peer: RemoteInfo) => {
    const reply = answer(query, known);
    if (reply) socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    set,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The reply to one query (RFC 1035, section 4.1), or undefined when it is not a single-question query. */
function answer(query: Buffer, known: ReadonlyMap<string, string>): Buffer | undefined {
  if (query.length < HEADER_BYTES) return undefined;
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  for (;;) {
    const length = query[offset];
    if (length === undefined || length > 63) return undefined;
    offset += 1;
    if (length === 0) break;
    labels.push(query.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > query.length) return undefined;
  const type = query.readUInt16BE(offset);
  const questionEnd = offset + 4;
  const address = known.get(normalize(labels.join('.')));
  const answers = address !== undefined && type === TYPE_A ? [address] : [];

  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR (a response), the query's opcode, AA (authoritative), the query's RD, and the response code.
  header.writeUInt16BE(0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | (address ? 0 : RCODE_NXDOMAIN), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((ipv4) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc000 | HEADER_BYTES, 0); // the name: a pointer to the question's
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(0, 6); // TTL 0: never cached
    record.writeUInt16BE(4, 10);
    ipv4.split('.').forEach((octet, index) => record.writeUInt8(Number(octet), 12 + index));
    return record;
  });
  return Buffer.concat([header, query.subarray(HEADER_BYTES, questionEnd), ...records]);
}
