import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { BadRequestError, HeraldError, NotFoundError, UnavailableError, UpgradeRequiredError } from '../common/errors';
import { upgradeRefusal, writeUpgradeRefusal } from './upgrade-refusal';

/** A gateway's `ws` server, with the path Nest registered it under. */
type PathServer = WebSocketServer & { path: string };

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * The `ws` adapter without Nest's message routing, and with an HTTP answer to every upgrade request it
 * does not take (RFC 6455 §4.2.2): the REST API's JSON error body, never a silently dropped socket.
 * - another path: 404, as a plain request there gets;
 * - the gateway's path, but not a WebSocket upgrade (another protocol or version): 426 with `Upgrade: websocket`;
 * - a handshake `ws` itself refuses (a bad `Sec-WebSocket-Key`, say): 400.
 * The gateway's own refusals (draining, at capacity, Origin, token) are answered the same way (HeraldGateway).
 */
export class HeraldWsAdapter extends WsAdapter {
  private readonly upgradeListeners: { server: Server; listener: UpgradeListener }[] = [];

  constructor(
    app: INestApplicationContext,
    private readonly replicaId: string,
  ) {
    super(app);
  }

  override bindMessageHandlers(): void {
    // Deliberately empty: HeraldGateway reads every frame from the socket itself (it has no
    // @SubscribeMessage handlers), so the rxjs pipeline Nest builds per message would be pure cost.
  }

  override bindClientDisconnect(): void {
    // Deliberately empty: the gateway's own shared `close` listener ends the connection. Nest's adds a
    // `once` wrapper and a closure to every socket, kept for its lifetime.
  }

  override bindErrorHandler<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(server: T): T {
    // Server errors only: socket errors go to the gateway's shared `error` listener (Nest's adds one
    // closure per socket).
    server.on('error', (error: Error) => this.logger.error(error));
    // Handshakes `ws` refuses (after the checks of `routeUpgrade`) get the JSON error body, not its text.
    (server as unknown as WebSocketServer).on('wsClientError', (error, socket, request) =>
      this.refuse(new BadRequestError(error.message), request, socket),
    );
    return server;
  }

  /** Nest's version drops the socket of an upgrade to any other path; this one answers it (`routeUpgrade`). */
  protected override ensureHttpServerExists(port: number, httpServer: Server = createServer()): Server | undefined {
    if (this.httpServersRegistry.has(port)) return undefined;
    this.httpServersRegistry.set(port, httpServer);
    const listener: UpgradeListener = (request, socket, head) => this.routeUpgrade(port, request, socket, head);
    httpServer.on('upgrade', listener);
    this.upgradeListeners.push({ server: httpServer, listener });
    return httpServer;
  }

  /**
   * The gateway is gone from here on, but the HTTP server still takes connections until the app closes it:
   * an upgrade then gets the draining refusal (503, `Retry-After`, so a proxy tries another replica), not
   * the 426 of the plain-request route that Node would hand it to without an `upgrade` listener.
   */
  override async dispose(): Promise<void> {
    for (const { server, listener } of this.upgradeListeners.splice(0)) {
      server.off('upgrade', listener);
      server.on('upgrade', (request: IncomingMessage, socket: Duplex) =>
        this.refuse(new UnavailableError('server shutting down, reconnect'), request, socket),
      );
    }
    await super.dispose();
  }

  private routeUpgrade(port: number, request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const servers = (this.wsServersRegistry.get(port) ?? []) as PathServer[];
    const path = (request.url ?? '').split('?', 1)[0];
    const target = servers.find((server) => server.path === path);
    if (!target) {
      this.refuse(notFound(servers), request, socket);
      return;
    }
    const problem = handshakeProblem(request);
    if (problem) {
      this.refuse(problem, request, socket);
      return;
    }
    target.handleUpgrade(request, socket, head, (ws: WebSocket) => target.emit('connection', ws, request));
  }

  private refuse(error: HeraldError, request: IncomingMessage, socket: Duplex): void {
    writeUpgradeRefusal(socket, upgradeRefusal(error, request, this.replicaId));
  }
}

/** What a request to a WebSocket path lacks to be a WebSocket handshake `ws` can take; null when nothing. */
function handshakeProblem(request: IncomingMessage): HeraldError | null {
  // Any other method there is not a route at all, as a plain request finds.
  if (request.method !== 'GET') return new NotFoundError('no such endpoint: a WebSocket opens with GET');
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
    return new UpgradeRequiredError();
  }
  const version = request.headers['sec-websocket-version'];
  // 13 is RFC 6455; `ws` still takes 8 (a draft), so it is not refused here.
  if (version !== '13' && version !== '8') {
    return new UpgradeRequiredError('unsupported WebSocket version: send Sec-WebSocket-Version: 13');
  }
  return null;
}

function notFound(servers: PathServer[]): NotFoundError {
  return new NotFoundError(`no WebSocket endpoint at this path: connect to ${servers.map((s) => s.path).join(' or ')}`);
}
