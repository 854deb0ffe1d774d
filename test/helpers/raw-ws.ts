import { createHash, randomBytes } from 'node:crypto';
import { connect, Socket } from 'node:net';

/**
 * A raw RFC 6455 client over a TCP socket, for hostile-input tests: the upgrade
 * is written by hand (any header, the raw status read back), and any frame can
 * be sent, valid or not. Server frames are parsed one by one (never reassembled:
 * the server does not fragment).
 */

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** FIN bit; default true. */
  fin?: boolean;
  /** RSV1..3 as the bits 0x40, 0x20, 0x10 of the first byte; default 0. */
  rsv?: number;
  /** Mask the payload (clients must); default true. */
  mask?: boolean;
  /** Force a length encoding ('7' only fits up to 125); default the minimal one. */
  lengthBits?: 7 | 16 | 64;
  /** Announce this length instead of the payload's (a lie, for hostile headers). */
  announcedLength?: bigint;
}

/** Encodes one frame; exported so a test can build thousands into one write. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const length = spec.announcedLength ?? BigInt(payload.length);
  const bits = spec.lengthBits ?? (length < 126n ? 7 : length < 65536n ? 16 : 64);
  const masked = spec.mask ?? true;
  const first = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) & 0x70) | (spec.opcode & 0x0f);
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (bits === 7) {
    header = Buffer.from([first, maskBit | Number(length)]);
  } else if (bits === 16) {
    header = Buffer.alloc(4);
    header.writeUInt8(first, 0);
    header.writeUInt8(maskBit | 126, 1);
    header.writeUInt16BE(Number(length), 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(first, 0);
    header.writeUInt8(maskBit | 127, 1);
    header.writeBigUInt64BE(length, 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i % 4]!;
  return Buffer.concat([header, key, body]);
}

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
  /** Text frames: the payload as UTF-8, and parsed when it is JSON. */
  text?: string;
  json?: Record<string, unknown>;
  /** Close frames: the status code (1005 when none) and reason. */
  code?: number;
  reason?: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface HttpAnswer {
  status: number;
  statusLine: string;
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: string;
}

export interface UpgradeOptions {
  /** Extra or replacing headers (a value of null drops a default header). */
  headers?: Record<string, string | null>;
  /** Answer server pings with pongs; default true. */
  autoPong?: boolean;
  timeoutMs?: number;
}

/** The outcome of an upgrade: the raw HTTP answer, and the socket when it was 101. */
export interface UpgradeResult {
  response: HttpAnswer;
  ws: RawWebSocket | null;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Performs the upgrade by hand. `url` is ws://host:port/path?query. */
export async function rawUpgrade(url: string, options: UpgradeOptions = {}): Promise<UpgradeResult> {
  const target = new URL(url);
  const key = randomBytes(16).toString('base64');
  const defaults: Record<string, string | null> = {
    host: target.host,
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': key,
    'sec-websocket-version': '13',
  };
  const lowered = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const headers = { ...defaults, ...lowered };
  const lines = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([name, value]) => `${name}: ${value}\r\n`);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined); // reported as a close without a close frame
  socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\n${lines.join('')}\r\n`);

  const timeoutMs = options.timeoutMs ?? 10_000;
  const { head, rest } = await readHead(socket, timeoutMs);
  const response = parseHead(head);
  if (response.status !== 101) {
    response.body = await readBody(socket, rest, response.headers, timeoutMs);
    socket.destroy();
    return { response, ws: null };
  }
  const expected = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  if (response.headers['sec-websocket-accept'] !== expected) {
    socket.destroy();
    throw new Error(`bad Sec-WebSocket-Accept: ${response.headers['sec-websocket-accept']}`);
  }
  return { response, ws: new RawWebSocket(socket, rest, options.autoPong ?? true) };
}

/** Upgrades and insists on 101. */
export async function rawConnect(url: string, options: UpgradeOptions = {}): Promise<RawWebSocket> {
  const { response, ws } = await rawUpgrade(url, options);
  if (!ws) throw new Error(`upgrade refused: ${response.statusLine} ${response.body}`);
  return ws;
}

function readHead(socket: Socket, timeoutMs: number): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no HTTP answer within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end >= 0)
        finish(null, { head: buffered.subarray(0, end).toString('latin1'), rest: buffered.subarray(end + 4) });
    };
    const onClose = (): void => finish(new Error(`connection closed before an HTTP answer: ${buffered.toString()}`));
    function finish(error: Error | null, value?: { head: string; rest: Buffer }): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve(value!);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

function parseHead(head: string): HttpAnswer {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), statusLine, headers, body: '' };
}

function readBody(socket: Socket, rest: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<string> {
  const length = headers['content-length'] === undefined ? Infinity : Number(headers['content-length']);
  return new Promise((resolve) => {
    let body = rest;
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(body.subarray(0, Number.isFinite(length) ? length : body.length).toString('utf8'));
    };
    const timer = setTimeout(done, timeoutMs);
    const onData = (chunk: Buffer): void => {
      body = Buffer.concat([body, chunk]);
      if (body.length >= length) done();
    };
    if (body.length >= length || socket.destroyed || socket.readableEnded) return done();
    socket.on('data', onData);
    socket.once('close', done);
    socket.resume();
  });
}

/** An open connection after a 101: write any frame, read the server's frames. */
export class RawWebSocket {
  private readonly received: RawFrame[] = [];
  private buffer: Buffer;
  private waiters: (() => void)[] = [];
  private closeInfo: CloseInfo | null = null;
  private readonly ended: Promise<CloseInfo>;
  /** Answer the server's close frame and end the socket, as RFC 6455 asks; false plays a peer that never does. */
  answersClose = true;

  constructor(
    readonly socket: Socket,
    initial: Buffer,
    public autoPong: boolean,
  ) {
    this.buffer = initial;
    this.ended = new Promise((resolve) => {
      socket.on('close', () => {
        this.closeInfo ??= { code: 1006, reason: '' };
        this.notify();
        resolve(this.closeInfo);
      });
    });
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    this.parse();
    socket.resume();
  }

  /** Every frame the server sent so far. */
  frames(): RawFrame[] {
    return this.received;
  }

  /** The JSON text frames so far. */
  messages(): Record<string, unknown>[] {
    return this.received.flatMap((f) => (f.json ? [f.json] : []));
  }

  send(spec: FrameSpec): void {
    this.write(encodeFrame(spec));
  }

  /** One masked, final text frame. */
  text(data: string | Buffer): void {
    this.send({ opcode: Opcode.Text, payload: data });
  }

  json(value: unknown): void {
    this.text(JSON.stringify(value));
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  /** The first frame (from index `from`) that matches; rejects on timeout or once the connection ended. */
  async next(match: (f: RawFrame) => boolean, timeoutMs = 5000, from = 0): Promise<RawFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found) return found;
      const seen = JSON.stringify(this.received.slice(from).map(describe));
      if (this.closeInfo)
        throw new Error(`connection closed (${this.closeInfo.code}) before a matching frame: ${seen}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms: ${seen}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next JSON message that matches. */
  async nextJson(
    match: (m: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
    from = 0,
  ): Promise<Record<string, unknown>> {
    return (await this.next((f) => f.json !== undefined && match(f.json), timeoutMs, from)).json!;
  }

  /** Resolves with the server's close frame, or 1006 when TCP ended without one; rejects after `timeoutMs`. */
  async closed(timeoutMs = 5000): Promise<CloseInfo> {
    if (this.closeInfo) return this.closeInfo;
    let timer: NodeJS.Timeout | undefined;
    const closeFrame = this.next((f) => f.opcode === Opcode.Close, timeoutMs).then(
      () => this.closeInfo!,
      () => this.ended,
    );
    try {
      return await Promise.race([
        closeFrame,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when the TCP connection is gone, whichever side ended it (the close frame alone does not). */
  tcpClosed(): Promise<CloseInfo> {
    return this.ended;
  }

  get isClosed(): boolean {
    return this.closeInfo !== null;
  }

  /** A polite close (1000), then the socket is ended. */
  close(): void {
    this.send({ opcode: Opcode.Close, payload: Buffer.from([0x03, 0xe8]) });
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const frame = takeFrame(this.buffer);
      if (!frame) return;
      this.buffer = this.buffer.subarray(frame.size);
      this.received.push(frame.frame);
      if (frame.frame.opcode === Opcode.Ping && this.autoPong)
        this.send({ opcode: Opcode.Pong, payload: frame.frame.payload });
      if (frame.frame.opcode === Opcode.Close && !this.closeInfo) {
        this.closeInfo = { code: frame.frame.code!, reason: frame.frame.reason! };
        if (this.answersClose) {
          this.send({ opcode: Opcode.Close, payload: frame.frame.payload.subarray(0, 2) });
          this.socket.end();
        }
      }
      this.notify();
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function takeFrame(buf: Buffer): { frame: RawFrame; size: number } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  let length = buf[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return null;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return null;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const key = masked ? buf.subarray(offset, offset + 4) : null;
  if (masked) offset += 4;
  if (buf.length < offset + length) return null;
  const payload = Buffer.from(buf.subarray(offset, offset + length));
  if (key) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!;
  const frame: RawFrame = { fin: (buf[0]! & 0x80) !== 0, rsv: buf[0]! & 0x70, opcode: buf[0]! & 0x0f, payload };
  if (frame.opcode === Opcode.Text) {
    frame.text = payload.toString('utf8');
    try {
      const value: unknown = JSON.parse(frame.text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        frame.json = value as Record<string, unknown>;
      }
    } catch {
      // not JSON: kept as text
    }
  } else if (frame.opcode === Opcode.Close) {
    frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    frame.reason = payload.subarray(2).toString('utf8');
  }
  return { frame, size: offset + length };
}

function describe(f: RawFrame): unknown {
  return f.json ?? f.text ?? (f.opcode === Opcode.Close ? { close: f.code, reason: f.reason } : { opcode: f.opcode });
}
