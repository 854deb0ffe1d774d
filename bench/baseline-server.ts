/**
 * Baseline for the benchmarks: the least a Redis-linked WebSocket fan-out can
 * do. POST /publish {userId, payload} → Redis PUBLISH → the process holding
 * the user sends the frame. No persistence, no acks, no redelivery.
 * Run as a child process: node baseline-server.js <port> <redisUrl> <prefix>
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';

const [portArg, redisUrl = 'redis://127.0.0.1:6379', prefix = 'baseline'] = process.argv.slice(2);
const port = Number(portArg);
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
const sockets = new Map<string, Set<WebSocket>>();

sub.on('message', (channel: string, message: string) => {
  const userId = channel.slice(prefix.length + 3);
  for (const socket of sockets.get(userId) ?? []) socket.send(message);
});

const http = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { userId: string; payload: unknown };
    const frame = JSON.stringify({ type: 'notification', payload: body.payload });
    pub.publish(`${prefix}:u:${body.userId}`, frame).then(
      () => response.writeHead(202).end('{}'),
      () => response.writeHead(503).end('{}'),
    );
  });
});

const wss = new WebSocketServer({ server: http, path: '/ws' });
wss.on('connection', (socket, request) => {
  const userId = new URL(request.url ?? '/', 'http://x').searchParams.get('user') ?? 'anonymous';
  let set = sockets.get(userId);
  if (!set) {
    set = new Set();
    sockets.set(userId, set);
    void sub.subscribe(`${prefix}:u:${userId}`).then(() => socket.send('{"type":"welcome"}'));
  } else {
    socket.send('{"type":"welcome"}');
  }
  set.add(socket);
  socket.on('close', () => {
    set.delete(socket);
    if (set.size === 0) {
      sockets.delete(userId);
      void sub.unsubscribe(`${prefix}:u:${userId}`);
    }
  });
});

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  wss.close();
  http.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
});
