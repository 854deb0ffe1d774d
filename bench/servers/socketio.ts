/**
 * Baseline B: Socket.IO 4 with @socket.io/redis-adapter, websocket transport only, as a NestJS user
 * would deploy it next to their app. Each socket joins room `user:<id>` (handshake query `user`).
 * Publishers use @socket.io/redis-emitter (see bench/lib/targets.ts): `to('user:x').emit(...)` and a
 * plain `emit(...)` for a broadcast. Nothing is persisted or acked.
 *   node socketio.js <port> <redisUrl> <prefix>
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const [portArg, redisUrl = 'redis://127.0.0.1:6379', prefix = 'bench-sio'] = process.argv.slice(2);
const pub = new Redis(redisUrl);
const sub = pub.duplicate();
const http = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' }).end(`{"connections":${io.engine.clientsCount}}`);
});
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  adapter: createAdapter(pub, sub, { key: prefix }),
});

io.on('connection', (socket) => {
  const user = socket.handshake.query.user;
  void socket.join(`user:${typeof user === 'string' ? user : 'anonymous'}`);
});

http.listen(Number(portArg), '127.0.0.1');
process.on('SIGTERM', () => {
  io.disconnectSockets(true);
  http.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
});
