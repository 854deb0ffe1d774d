/**
 * Baseline A: a minimal raw `ws` server, the floor of what Node does. Users connect to /ws?user=<id>.
 * POST /publish {userId, payload} and POST /broadcast {payload} go through Redis pub/sub, so two
 * processes behave like two replicas; the process holding a user sends the frame. A broadcast frame is
 * built once (one Buffer) and written to every socket. No auth, no persistence, no acks, no redelivery.
 * With `acks` (the raw-ws-acks baseline) each frame carries an `id`, one per publish or broadcast, and the
 * server parses every `{"type":"ack","id"}` frame a client sends and counts it: no answer, nothing stored.
 * GET / answers `{"connections","acks","lastAckAt"}`.
 *   node raw-ws.js <port> <redisUrl> <prefix> [acks]
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';

const [portArg, redisUrl = 'redis://127.0.0.1:6379', prefix = 'bench-raw', mode] = process.argv.slice(2);
const withAcks = mode === 'acks';
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
const sockets = new Map<string, Set<WebSocket>>();
const all = new Set<WebSocket>();
const userChannel = (userId: string) => `${prefix}:u:${userId}`;
const broadcastChannel = `${prefix}:all`;
let acks = 0;
let lastAckAt = 0;

void sub.subscribe(broadcastChannel);
sub.on('messageBuffer', (channelBuffer: Buffer, message: Buffer) => {
  const channel = channelBuffer.toString();
  if (channel === broadcastChannel) {
    for (const socket of all) socket.send(message, { binary: false });
    return;
  }
  for (const socket of sockets.get(channel.slice(prefix.length + 3)) ?? []) socket.send(message, { binary: false });
});

function readBody(request: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

const http = createServer((request, response) => {
  if (request.method !== 'POST') {
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(`{"connections":${all.size},"acks":${acks},"lastAckAt":${lastAckAt}}`);
    return;
  }
  readBody(request)
    .then(async (text) => {
      const body = JSON.parse(text) as { userId?: string; payload?: unknown };
      const frame = JSON.stringify(
        withAcks
          ? { type: 'notification', id: randomUUID(), payload: body.payload }
          : { type: 'notification', payload: body.payload },
      );
      if (request.url === '/broadcast') await pub.publish(broadcastChannel, frame);
      else if (request.url === '/publish' && body.userId) await pub.publish(userChannel(body.userId), frame);
      else return response.writeHead(404).end('{}');
      response.writeHead(202, { 'content-type': 'application/json' }).end('{}');
    })
    .catch(() => response.writeHead(503).end('{}'));
});

const wss = new WebSocketServer({ server: http, path: '/ws', perMessageDeflate: false });
wss.on('connection', (socket, request) => {
  const userId = new URL(request.url ?? '/', 'http://x').searchParams.get('user') ?? 'anonymous';
  let set = sockets.get(userId);
  all.add(socket);
  if (!set) {
    set = new Set();
    sockets.set(userId, set);
    set.add(socket);
    sub.subscribe(userChannel(userId)).then(
      () => socket.send('{"type":"welcome"}'),
      () => socket.close(1011),
    );
  } else {
    set.add(socket);
    socket.send('{"type":"welcome"}');
  }
  socket.on('error', () => undefined);
  if (withAcks) socket.on('message', countAck);
  socket.on('close', () => {
    all.delete(socket);
    set.delete(socket);
    if (set.size === 0 && sockets.get(userId) === set) {
      sockets.delete(userId);
      void sub.unsubscribe(userChannel(userId));
    }
  });
});

/** An ack from a client: parsed and counted, nothing else. */
function countAck(data: Buffer): void {
  try {
    const frame = JSON.parse(data.toString('utf8')) as { type?: unknown; id?: unknown };
    if (frame.type === 'ack' && typeof frame.id === 'string') {
      acks++;
      lastAckAt = Date.now();
    }
  } catch {
    // Not JSON: ignored, as a bad frame would be.
  }
}

http.listen(Number(portArg), '127.0.0.1');
process.on('SIGTERM', () => {
  for (const socket of all) socket.terminate();
  http.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
});
