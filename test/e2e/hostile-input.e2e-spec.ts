import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateRawSync, gzipSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import { publish, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { encodeFrame, Opcode, rawConnect, rawUpgrade, RawWebSocket } from '../helpers/raw-ws';
import { TEST_API_KEY, TEST_JWT_SECRET } from '../helpers/replica';

const ALLOWED_ORIGIN = 'https://app.example.com';
const MAX_MESSAGE = 65536; // HERALD_MAX_MESSAGE_BYTES, default
const MAX_BODY = 262144; // HERALD_MAX_BODY_BYTES, default

/**
 * Hostile input against one replica: broken WebSocket framing, oversized and
 * fragmented messages, bad UTF-8, bad frames, forged tokens, foreign Origins,
 * and REST abuse. Frames are written byte by byte with the raw client.
 */
describe('hostile input', () => {
  let cluster: TestCluster;
  const open: RawWebSocket[] = [];
  const replica = () => cluster.replicas[0]!;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  /** A raw connection of this user (a Bearer token in the upgrade), after its `welcome`. */
  const connect = async (userId: string): Promise<RawWebSocket> => {
    const ws = await rawConnect(replica().ws, { headers: { authorization: `Bearer ${userToken(userId)}` } });
    open.push(ws);
    await ws.nextJson((m) => m.type === 'welcome');
    return ws;
  };

  /** Sends one frame (or raw bytes) and waits for the close it must cause. */
  const closeCodeAfter = async (label: string, send: (ws: RawWebSocket) => void): Promise<number> => {
    const ws = await connect(user(label));
    send(ws);
    return (await ws.closed(5000)).code;
  };

  /** Sends a command with an id and waits for the frame that answers it. */
  const command = async (ws: RawWebSocket, frame: Record<string, unknown> & { id: string }) => {
    const from = ws.frames().length;
    ws.json(frame);
    return ws.nextJson((m) => m.id === frame.id && m.type !== 'notification', 5000, from);
  };

  /** A notification published now reaches this connection and its ack is recorded. */
  const expectDelivered = async (ws: RawWebSocket, userId: string): Promise<void> => {
    const { id } = await publish(replica().http, { to: { users: [userId] }, event: 'hostile.check' });
    await ws.nextJson((m) => m.type === 'notification' && m.id === id, 5000);
    expect(await command(ws, { type: 'ack', id })).toMatchObject({ type: 'ack', id, status: 'ok' });
  };

  const expectHealthy = async (): Promise<void> => {
    const ready = await fetch(`${replica().http}/health/ready`);
    expect(ready.status).toBe(200);
  };

  /** Resident memory of the replica process, from /proc (Linux). */
  const rssBytes = (): number => {
    const status = readFileSync(`/proc/${replica().pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  };

  beforeAll(async () => {
    cluster = await TestCluster.start('hostile', 1, { HERALD_ALLOWED_ORIGINS: ALLOWED_ORIGIN });
  });

  afterEach(() => {
    for (const ws of open.splice(0)) ws.destroy();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  describe('WebSocket framing', () => {
    it('closes with 1002 on every framing violation', async () => {
      const ping = JSON.stringify({ type: 'ping', id: 'p' });
      const violations: [string, (ws: RawWebSocket) => void][] = [
        ['unmasked client frame', (ws) => ws.send({ opcode: Opcode.Text, payload: ping, mask: false })],
        ['RSV1 without an extension', (ws) => ws.send({ opcode: Opcode.Text, payload: ping, rsv: 0x40 })],
        ['RSV2', (ws) => ws.send({ opcode: Opcode.Text, payload: ping, rsv: 0x20 })],
        ['RSV3', (ws) => ws.send({ opcode: Opcode.Text, payload: ping, rsv: 0x10 })],
        ['opcode 0x3', (ws) => ws.send({ opcode: 0x3, payload: ping })],
        ['opcode 0xB', (ws) => ws.send({ opcode: 0xb, payload: 'x' })],
        ['ping with 126 bytes', (ws) => ws.send({ opcode: Opcode.Ping, payload: Buffer.alloc(126, 0x61) })],
        ['ping with FIN=0', (ws) => ws.send({ opcode: Opcode.Ping, payload: 'x', fin: false })],
        ['close with a 1-byte payload', (ws) => ws.send({ opcode: Opcode.Close, payload: Buffer.from([0x03]) })],
        ['continuation with no message started', (ws) => ws.send({ opcode: Opcode.Continuation, payload: ping })],
        [
          'text frame inside an unfinished fragmented message',
          (ws) => {
            ws.send({ opcode: Opcode.Text, payload: '{"type":', fin: false });
            ws.send({ opcode: Opcode.Text, payload: ping });
          },
        ],
      ];
      const codes: Record<string, number> = {};
      for (const [name, send] of violations) codes[name] = await closeCodeAfter('frame', send);
      expect(codes).toEqual(Object.fromEntries(violations.map(([name]) => [name, 1002])));
      await expectHealthy();
    }, 40_000);

    it('accepts a message of exactly the size limit, whole or in fragments, and length encodings of any width', async () => {
      const ws = await connect(user('limit'));
      const exact = padded({ type: 'ping', id: 'at-limit' }, MAX_MESSAGE);
      expect(Buffer.byteLength(exact)).toBe(MAX_MESSAGE);
      expect(await sendAndAwait(ws, 'at-limit', () => ws.text(exact))).toMatchObject({ type: 'pong' });

      const inParts = padded({ type: 'ping', id: 'at-limit-parts' }, MAX_MESSAGE);
      expect(
        await sendAndAwait(ws, 'at-limit-parts', () => {
          for (let i = 0; i < 4; i++) {
            ws.send({
              opcode: i === 0 ? Opcode.Text : Opcode.Continuation,
              payload: inParts.slice(i * 16384, (i + 1) * 16384),
              fin: i === 3,
            });
          }
        }),
      ).toMatchObject({ type: 'pong' });

      // A short frame announced with a 16-bit and a 64-bit length (not minimal, tolerated by ws).
      for (const lengthBits of [16, 64] as const) {
        const id = `len-${lengthBits}`;
        const frame = JSON.stringify({ type: 'ping', id });
        expect(
          await sendAndAwait(ws, id, () => ws.send({ opcode: Opcode.Text, payload: frame, lengthBits })),
        ).toMatchObject({ type: 'pong', id });
      }
      // Control frames may come between the fragments of a message.
      const from = ws.frames().length;
      ws.send({ opcode: Opcode.Text, payload: '{"type":"ping",', fin: false });
      ws.send({ opcode: Opcode.Ping, payload: 'between' });
      ws.send({ opcode: Opcode.Continuation, payload: '"id":"split"}' });
      const pong = await ws.next((f) => f.opcode === Opcode.Pong, 5000, from);
      expect(pong.payload.toString()).toBe('between');
      expect(await ws.nextJson((m) => m.id === 'split', 5000, from)).toMatchObject({ type: 'pong' });

      // Not JSON at the limit: answered, not closed.
      const junk = 'x'.repeat(MAX_MESSAGE);
      const before = ws.frames().length;
      ws.text(junk);
      expect(await ws.nextJson((m) => m.type === 'error', 5000, before)).toMatchObject({ code: 'BAD_REQUEST' });
      expect(ws.isClosed).toBe(false);
    }, 30_000);

    it('closes with 1009 on a message over the size limit: one frame, small fragments, or a huge announced length', async () => {
      const over = padded({ type: 'ping', id: 'over' }, MAX_MESSAGE + 1);
      expect(await closeCodeAfter('big', (ws) => ws.text(over))).toBe(1009);

      expect(
        await closeCodeAfter('big-parts', (ws) => {
          const part = Buffer.alloc(16_000, 0x20);
          ws.send({ opcode: Opcode.Text, payload: part, fin: false });
          for (let i = 0; i < 4; i++) ws.send({ opcode: Opcode.Continuation, payload: part, fin: false });
        }),
      ).toBe(1009);

      // A header announcing 2^53 bytes, with no data behind it: refused on the header alone.
      expect(
        await closeCodeAfter('big-header', (ws) =>
          ws.write(encodeFrame({ opcode: Opcode.Text, announcedLength: 2n ** 53n, payload: '' }).subarray(0, 14)),
        ),
      ).toBe(1009);
      await expectHealthy();
    }, 30_000);

    it('keeps memory bounded and ends a flood of 100 000 empty continuation fragments', async () => {
      const watcherId = user('watcher');
      const watcher = await connect(watcherId);
      const rssBefore = rssBytes();

      const flooder = await connect(user('flood'));
      const empty = encodeFrame({ opcode: Opcode.Continuation, fin: false });
      const frames = [encodeFrame({ opcode: Opcode.Text, payload: '{"type":"ping",', fin: false })];
      for (let i = 0; i < 100_000; i++) frames.push(empty);
      flooder.write(Buffer.concat(frames));
      const { code, reason } = await flooder.closed(15_000);
      // ws's maxFragments (16384 by default) ends the message: 1008 "Too many message fragments".
      expect({ code, reason }).toEqual({ code: 1008, reason: '' });

      expect(rssBytes() - rssBefore).toBeLessThan(64 * 1024 * 1024);
      await expectHealthy();
      await expectDelivered(watcher, watcherId);
    }, 40_000);

    it('closes with 1007 on invalid UTF-8, whole, split across fragments, overlong or a surrogate', async () => {
      const prefix = Buffer.from('{"type":"ping","id":"u","x":"');
      const suffix = Buffer.from('"}');
      const bad = (bytes: number[]) => Buffer.concat([prefix, Buffer.from(bytes), suffix]);
      const cases: [string, (ws: RawWebSocket) => void][] = [
        ['0xFF in one frame', (ws) => ws.text(bad([0xff]))],
        ['overlong 0xC0 0xAF', (ws) => ws.text(bad([0xc0, 0xaf]))],
        ['UTF-16 surrogate 0xED 0xA0 0x80', (ws) => ws.text(bad([0xed, 0xa0, 0x80]))],
        ['code point over U+10FFFF', (ws) => ws.text(bad([0xf4, 0x90, 0x80, 0x80]))],
        [
          'truncated sequence split across two fragments',
          (ws) => {
            ws.send({ opcode: Opcode.Text, payload: Buffer.concat([prefix, Buffer.from([0xe2, 0x82])]), fin: false });
            ws.send({ opcode: Opcode.Continuation, payload: Buffer.concat([Buffer.from([0x28]), suffix]) });
          },
        ],
      ];
      const codes: Record<string, number> = {};
      for (const [name, send] of cases) codes[name] = await closeCodeAfter('utf8', send);
      expect(codes).toEqual(Object.fromEntries(cases.map(([name]) => [name, 1007])));

      // A valid character split across fragments is fine.
      const ws = await connect(user('utf8-ok'));
      const from = ws.frames().length;
      ws.send({
        opcode: Opcode.Text,
        payload: Buffer.from([...Buffer.from('{"type":"ping","id":"euro","x":"'), 0xe2, 0x82]),
        fin: false,
      });
      ws.send({ opcode: Opcode.Continuation, payload: Buffer.from([0xac, ...Buffer.from('"}')]) });
      expect(await ws.nextJson((m) => m.type === 'pong', 5000, from)).toMatchObject({ id: 'euro' });
    }, 30_000);

    it('closes with 1003 on a binary frame, whole or fragmented', async () => {
      const whole = await connect(user('binary'));
      whole.send({ opcode: Opcode.Binary, payload: Buffer.from(JSON.stringify({ type: 'ping', id: 'b' })) });
      expect(await whole.closed()).toEqual({ code: 1003, reason: 'binary frames are not supported' });

      const parts = await connect(user('binary-parts'));
      parts.send({ opcode: Opcode.Binary, payload: Buffer.from([1, 2]), fin: false });
      parts.send({ opcode: Opcode.Continuation, payload: Buffer.from([3]) });
      expect((await parts.closed()).code).toBe(1003);
    }, 20_000);

    it('never negotiates compression, and a compressed frame afterwards closes with 1002', async () => {
      const { response, ws } = await rawUpgrade(replica().ws, {
        headers: {
          authorization: `Bearer ${userToken(user('deflate'))}`,
          'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits; server_no_context_takeover',
        },
      });
      if (ws) open.push(ws);
      expect(response.status).toBe(101);
      expect(response.headers['sec-websocket-extensions']).toBeUndefined();
      await ws!.nextJson((m) => m.type === 'welcome');

      const compressed = deflateRawSync(Buffer.from(JSON.stringify({ type: 'ping', id: 'z' })));
      ws!.send({ opcode: Opcode.Text, payload: compressed, rsv: 0x40 });
      expect((await ws!.closed()).code).toBe(1002);
    }, 20_000);
  });

  describe('WebSocket frames', () => {
    it('answers every malformed frame with BAD_REQUEST, echoing a valid id, and keeps the connection open', async () => {
      const userId = user('malformed');
      const ws = await connect(userId);
      const cases: [string, string, string | undefined][] = [
        ['not JSON', 'not json', undefined],
        ['empty text', '', undefined],
        ['truncated JSON', '{"type":"ping","id":"t1"', undefined],
        ['array', '[{"type":"ping","id":"a1"}]', undefined],
        ['string', '"ping"', undefined],
        ['number', '42', undefined],
        ['null', 'null', undefined],
        ['true', 'true', undefined],
        ['type missing', '{"id":"m1"}', 'm1'],
        ['type a number', '{"type":7,"id":"m2"}', 'm2'],
        ['type null', '{"type":null,"id":"m3"}', 'm3'],
        ['type an object', '{"type":{"toString":"ping"},"id":"m4"}', 'm4'],
        ['ack without id', '{"type":"ack"}', undefined],
        ['ack with an empty id', '{"type":"ack","id":""}', undefined],
        ['subscribe with a space in the channel', '{"type":"subscribe","channel":"bad topic!","id":"s1"}', 's1'],
        ['subscribe without channel', '{"type":"subscribe","id":"s2"}', 's2'],
        ['subscribe with an empty channel', '{"type":"subscribe","channel":"","id":"s3"}', 's3'],
        [
          'subscribe with a 129-character channel',
          `{"type":"subscribe","channel":"${'c'.repeat(129)}","id":"s4"}`,
          's4',
        ],
        ['subscribe with a numeric channel', '{"type":"unsubscribe","channel":5,"id":"s5"}', 's5'],
        ['id of 65 characters', `{"type":"ping","id":"${'i'.repeat(65)}"}`, undefined],
        ['id with a space', '{"type":"ping","id":"a b"}', undefined],
        ['id with a non-ASCII character', '{"type":"ping","id":"caf\u00e9"}', undefined],
        ['id with a control character', '{"type":"ping","id":"a\\u0007"}', undefined],
        ['id a number', '{"type":"ping","id":7}', undefined],
        ['id an array', '{"type":"ping","id":["p"]}', undefined],
        ['auth without token', '{"type":"auth","id":"au1"}', 'au1'],
        ['auth with a token over 4096 characters', `{"type":"auth","id":"au2","token":"${'t'.repeat(4097)}"}`, 'au2'],
      ];
      const answers: Record<string, unknown> = {};
      for (const [name, text] of cases) {
        const from = ws.frames().length;
        ws.text(text);
        const error = await ws.nextJson((m) => m.type === 'error', 5000, from);
        answers[name] = { code: error.code, id: error.id };
      }
      expect(answers).toEqual(Object.fromEntries(cases.map(([name, , id]) => [name, { code: 'BAD_REQUEST', id }])));

      expect(await command(ws, { type: 'ping', id: 'after-bad' })).toMatchObject({ type: 'pong', id: 'after-bad' });
      // JSON.parse makes "__proto__" an own field: ignored like any unknown field.
      ws.text('{"type":"ping","id":"proto","__proto__":{"type":"auth"}}');
      expect(await ws.nextJson((m) => m.id === 'proto')).toMatchObject({ type: 'pong' });
      await expectDelivered(ws, userId);
      expect(ws.isClosed).toBe(false);
    }, 30_000);

    it('answers an unknown type with UNKNOWN_TYPE, echoing the id, and keeps the connection open', async () => {
      const userId = user('unknown');
      const ws = await connect(userId);
      for (const type of [
        'teleport',
        'ACK',
        'welcome',
        'notification',
        '__proto__',
        'constructor',
        '',
        'x'.repeat(5000),
      ]) {
        const id = `u-${randomUUID().slice(0, 8)}`;
        const answer = await command(ws, { type, id });
        expect(answer).toMatchObject({ type: 'error', code: 'UNKNOWN_TYPE', id });
        expect(String(answer.message).length).toBeLessThan(200); // the type is cut, not echoed whole
      }
      expect(await command(ws, { type: 'ping', id: 'still' })).toMatchObject({ type: 'pong', id: 'still' });
      await expectDelivered(ws, userId);
    }, 30_000);

    it('survives deeply nested JSON within the size limit', async () => {
      const userId = user('deep');
      const ws = await connect(userId);
      const depth = 32_000;
      // Valid JSON: a ping with a 32 000-level array in an extra field (ignored), and a bare deep array.
      const deepPing = `{"type":"ping","id":"deep","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const deepObjects = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
      const unbalanced = '['.repeat(MAX_MESSAGE);
      expect(Buffer.byteLength(deepPing)).toBeLessThanOrEqual(MAX_MESSAGE);

      let from = ws.frames().length;
      ws.text(deepPing);
      // JSON.parse is not recursive in V8: the deep field parses, is ignored, and the ping is answered.
      expect(await ws.nextJson((m) => m.id === 'deep' || m.type === 'error', 5000, from)).toMatchObject({
        type: 'pong',
        id: 'deep',
      });

      for (const text of [`${'['.repeat(depth)}${']'.repeat(depth)}`, deepObjects, unbalanced]) {
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_MESSAGE);
        from = ws.frames().length;
        ws.text(text);
        expect(await ws.nextJson((m) => m.type === 'error', 5000, from)).toMatchObject({ code: 'BAD_REQUEST' });
      }
      await expectHealthy();
      await expectDelivered(ws, userId);
    }, 30_000);
  });

  describe('upgrade refusals', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    /** A JWT built by hand: any header, any claims, HMAC with any hash, or no signature at all. */
    const forge = (header: object, claims: object, hmac?: { hash: string; secret: string }): string => {
      const input = `${b64(header)}.${b64(claims)}`;
      return `${input}.${hmac ? createHmac(hmac.hash, hmac.secret).update(input).digest('base64url') : ''}`;
    };
    const good = { sub: 'mallory', exp: now() + 3600 };
    /** The code and message of a refusal's body: the REST API's JSON error body. */
    const errorOf = (body: string): { code: string; message: string } => {
      const { code, message } = (JSON.parse(body) as { error: { code: string; message: string } }).error;
      return { code, message };
    };

    it('refuses every bad token with 401 before the upgrade, never echoing the token', async () => {
      const challenge = (sent: boolean) => `Bearer realm="herald"${sent ? ', error="invalid_token"' : ''}`;
      const secret = TEST_JWT_SECRET;
      const cases: [string, string | null, string][] = [
        ['missing', null, 'Missing token'],
        ['alg none', forge({ alg: 'none', typ: 'JWT' }, good), 'invalid token'],
        ['alg None with a signature', forge({ alg: 'None' }, good, { hash: 'sha256', secret }), 'invalid token'],
        ['wrong secret', userToken('mallory', 3600, 'another-secret-0123456789abcdef0123'), 'invalid token'],
        ['HS384 with the right secret', jwt.sign(good, secret, { algorithm: 'HS384' }), 'invalid token'],
        ['HS512 with the right secret', jwt.sign(good, secret, { algorithm: 'HS512' }), 'invalid token'],
        [
          'RS256 header, HMAC with the secret',
          forge({ alg: 'RS256' }, good, { hash: 'sha256', secret }),
          'invalid token',
        ],
        ['nbf in the future', jwt.sign({ ...good, nbf: now() + 600 }, secret), 'token not yet valid'],
        ['expired', jwt.sign({ ...good, exp: now() - 60 }, secret), 'token expired'],
        ['no sub', jwt.sign({ exp: now() + 3600 }, secret), 'token has no valid "sub" (user id)'],
        ['empty sub', jwt.sign({ ...good, sub: '' }, secret), 'token has no valid "sub" (user id)'],
        ['numeric sub', jwt.sign({ ...good, sub: 42 }, secret), 'token has no valid "sub" (user id)'],
        ['sub with a space', jwt.sign({ ...good, sub: 'a b' }, secret), 'token has no valid "sub" (user id)'],
        ['no exp', jwt.sign({ sub: 'mallory' }, secret, { noTimestamp: true }), 'token has no "exp"'],
        ['over 4096 characters', jwt.sign({ ...good, pad: 'p'.repeat(4000) }, secret), 'token too long'],
        ['garbage', 'garbage-token-value', 'invalid token'],
        ['three empty parts', '..', 'invalid token'],
        ['payload that is not JSON', `${b64({ alg: 'HS256' })}.bm90LWpzb24.c2ln`, 'invalid token'],
      ];
      const got: Record<string, unknown> = {};
      const want: Record<string, unknown> = {};
      for (const [name, token, message] of cases) {
        for (const via of token === null ? ['none'] : ['header', 'query']) {
          const url = via === 'query' ? `${replica().ws}?token=${encodeURIComponent(token!)}` : replica().ws;
          const headers: Record<string, string> = via === 'header' ? { authorization: `Bearer ${token}` } : {};
          const { response, ws } = await rawUpgrade(url, { headers });
          if (ws) open.push(ws);
          const leaked = token !== null && token.length > 2 && JSON.stringify(response).includes(token);
          got[`${name} (${via})`] = {
            status: response.status,
            error: errorOf(response.body),
            challenge: response.headers['www-authenticate'],
            leaked,
          };
          want[`${name} (${via})`] = {
            status: 401,
            error: { code: 'UNAUTHORIZED', message },
            challenge: challenge(token !== null),
            leaked: false,
          };
        }
      }
      expect(got).toEqual(want);
      // The tokens that were refused appear nowhere in the replica's log.
      const log = replica().log();
      for (const [, token] of cases) if (token && token.length > 20) expect(log.includes(token)).toBe(false);
    }, 40_000);

    it('refuses a foreign Origin with 403 before the upgrade, matching scheme, host and port exactly', async () => {
      const token = userToken(user('browser'));
      const refused = [
        'http://app.example.com',
        'https://app.example.com:8443',
        'https://app.example.com.evil.test',
        'https://evil.test',
        'https://sub.app.example.com',
        'https://app.example.co',
        'https://app.example.com/',
        'null',
        '',
        `${ALLOWED_ORIGIN}, https://evil.test`,
      ];
      const got: Record<string, unknown> = {};
      for (const origin of refused) {
        // Origin is checked before the token: a valid token does not help, a missing one is not the reason.
        for (const withToken of [true, false]) {
          const { response, ws } = await rawUpgrade(replica().ws, {
            headers: { origin, ...(withToken ? { authorization: `Bearer ${token}` } : {}) },
          });
          if (ws) open.push(ws);
          got[`${JSON.stringify(origin)} token=${withToken}`] = `${response.status} ${errorOf(response.body).message}`;
        }
      }
      expect(got).toEqual(Object.fromEntries(Object.keys(got).map((k) => [k, '403 Origin not allowed'])));

      for (const origin of [ALLOWED_ORIGIN, 'HTTPS://APP.EXAMPLE.COM', undefined]) {
        const ws = await rawConnect(replica().ws, {
          headers: { authorization: `Bearer ${token}`, ...(origin === undefined ? {} : { origin }) },
        });
        open.push(ws);
        expect(await ws.nextJson((m) => m.type === 'welcome')).toMatchObject({ type: 'welcome' });
      }
    }, 30_000);
  });

  describe('REST abuse', () => {
    interface Answer {
      status: number;
      text: string;
      json: { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: { field: string }[] } };
    }
    const rest = async (
      method: string,
      path: string,
      options: { body?: string | Buffer; headers?: Record<string, string> } = {},
    ): Promise<Answer> => {
      const response = await fetch(`${replica().http}${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json', ...options.headers },
        body: options.body,
      });
      const text = await response.text();
      let json: Answer['json'] = {};
      try {
        json = JSON.parse(text) as Answer['json'];
      } catch {
        // not JSON: the assertion below shows the text
      }
      return { status: response.status, text, json };
    };
    /** A 4xx (never 500) with the one error body. */
    const expectError = (answer: Answer, status: number, code: string, field?: string): void => {
      expect({ status: answer.status, code: answer.json.error?.code }).toEqual({ status, code });
      const error = answer.json.error;
      expect({ message: typeof error?.message, requestId: typeof error?.requestId }).toEqual({
        message: 'string',
        requestId: 'string',
      });
      if (field !== undefined) expect(answer.json.error?.details?.map((d) => d.field)).toContain(field);
    };
    const valid = { to: { users: ['hostile-sink'] }, event: 'hostile.rest' };
    const post = (body: string | Buffer, headers?: Record<string, string>) =>
      rest('POST', '/v1/notifications', { body, headers });

    it('answers a 20 KiB header with 431 and the error body, never a 500', async () => {
      const answer = await rest('GET', `/v1/notifications/${randomUUID()}`, {
        headers: { 'x-filler': 'f'.repeat(20 * 1024) },
      });
      // Node's HTTP parser refuses it (maxHeaderSize 16 KiB) before any route; the service still answers in JSON.
      expectError(answer, 431, 'BAD_REQUEST');
      expect(answer.json.error?.message).toMatch(/headers are too large/);
      await expectHealthy();
    }, 15_000);

    it('answers 413 to a body one byte over the limit, and reads a body of exactly the limit', async () => {
      const fill = (size: number) => {
        const head = JSON.stringify({ ...valid, pad: '' });
        return `${head.slice(0, -2)}${'p'.repeat(size - head.length)}"}`;
      };
      expect(Buffer.byteLength(fill(MAX_BODY))).toBe(MAX_BODY);
      expectError(await post(fill(MAX_BODY + 1)), 413, 'PAYLOAD_TOO_LARGE');
      expectError(await post(fill(MAX_BODY)), 400, 'BAD_REQUEST', 'pad'); // read, then refused for the unknown field
      // A gzip bomb: 20 MiB of zeros in ~20 KiB; the limit applies to the inflated body.
      const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));
      expectError(await post(bomb, { 'content-encoding': 'gzip' }), 413, 'PAYLOAD_TOO_LARGE');
      await expectHealthy();
    }, 20_000);

    it('answers 400 naming (body) to malformed JSON, a non-object body, and bodies it cannot read', async () => {
      for (const body of ['{"to":', '{', "{'to':1}", '{"a":1,}', 'nul', '\u0000', '{"a":1}{"b":2}']) {
        expectError(await post(body), 400, 'BAD_REQUEST', '(body)');
      }
      for (const body of ['[]', '[{"to":{"all":true},"event":"x"}]', 'null', '"text"', '42']) {
        expectError(await post(body), 400, 'BAD_REQUEST', '(body)');
      }
      expectError(await post(JSON.stringify(valid), { 'content-encoding': 'br' }), 400, 'BAD_REQUEST', '(body)');
      expectError(await post('garbage', { 'content-encoding': 'gzip' }), 400, 'BAD_REQUEST', '(body)');
      expectError(
        await post(JSON.stringify(valid), { 'content-type': 'application/json; charset=latin1' }),
        400,
        'BAD_REQUEST',
        '(body)',
      );
    }, 15_000);

    it('answers a JSON body sent as text/plain with 400 asking for application/json', async () => {
      const answer = await post(JSON.stringify(valid), { 'content-type': 'text/plain' });
      expectError(answer, 400, 'BAD_REQUEST', '(body)');
      expect(answer.json.error?.message).toMatch(/Content-Type: application\/json/);
      const noType = await post(JSON.stringify(valid), { 'content-type': '' });
      expectError(noType, 400, 'BAD_REQUEST', '(body)');
    }, 15_000);

    it('answers 400 to a deeply nested JSON body, without a crash', async () => {
      const depth = 100_000;
      const deep = `{"to":{"users":["hostile-sink"]},"event":"deep","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      expect(deep.length).toBeLessThan(MAX_BODY);
      expectError(await post(deep), 400, 'BAD_REQUEST');
      const deepObjects = `{"to":{"users":["hostile-sink"]},"event":"deep","payload":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}`;
      expectError(await post(deepObjects), 400, 'BAD_REQUEST');
      await expectHealthy();
    }, 20_000);

    it('answers an invalid percent-encoding in the path with 400 and the error body', async () => {
      for (const path of ['/v1/notifications/%E0%A4%A', '/v1/notifications/%', '/v1/notifications/%C0%AF']) {
        const answer = await rest('GET', path);
        expect({ path, status: answer.status }).toEqual({ path, status: 400 });
        expectError(answer, 400, 'BAD_REQUEST');
      }
    }, 15_000);

    it('answers 400 on ttlSeconds that is negative, huge, fractional or not a number', async () => {
      for (const ttl of [
        '-1',
        '0',
        '1e300',
        '1e400',
        '2592001',
        '9007199254740993',
        '60.5',
        '"60"',
        'null',
        'true',
        '[60]',
      ]) {
        const body = `{"to":{"users":["hostile-sink"]},"event":"ttl","ttlSeconds":${ttl}}`;
        const answer = await post(body);
        expect({ ttl, status: answer.status, field: answer.json.error?.details?.map((d) => d.field) }).toEqual({
          ttl,
          status: 400,
          field: ['ttlSeconds'],
        });
        expectError(answer, 400, 'BAD_REQUEST', 'ttlSeconds');
      }
    }, 15_000);

    it('refuses an unknown top-level field with 400, __proto__ and constructor included', async () => {
      for (const field of ['colour', '__proto__', 'constructor', 'toString']) {
        const body = `{"to":{"users":["hostile-sink"]},"event":"unknown","${field}":{"x":1}}`;
        expectError(await post(body), 400, 'BAD_REQUEST', field);
      }
      const nested = await post('{"to":{"users":["hostile-sink"],"__proto__":{"all":true}},"event":"unknown"}');
      expectError(nested, 400, 'BAD_REQUEST', 'to.__proto__');
    }, 15_000);
  });
});

/** `frame` as JSON, padded with a "pad" field to exactly `size` bytes. */
function padded(frame: Record<string, unknown>, size: number): string {
  const bare = JSON.stringify({ ...frame, pad: '' });
  return `${bare.slice(0, -2)}${'x'.repeat(size - Buffer.byteLength(bare))}"}`;
}

/** Sends, then waits for the answer carrying `id`. */
async function sendAndAwait(ws: RawWebSocket, id: string, send: () => void): Promise<Record<string, unknown>> {
  const from = ws.frames().length;
  send();
  return ws.nextJson((m) => m.id === id, 5000, from);
}
