import { Inject, Logger } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import { CloseCode, retryAfterReason, WS_SUBPROTOCOL } from '@herald/protocol';
import { featuresOfUrl } from './requested-features';
import type { IncomingMessage } from 'node:http';
import type { RawData, ServerOptions, WebSocket, WebSocketServer } from 'ws';
import { UpgradeAuthService, UpgradeDecision } from '../auth/upgrade-auth.service';
import { UserPrincipal } from '../auth/user-token.service';
import { clientAddress, compileProxyTrust, ProxyTrust } from '../common/client-address';
import { HeraldError, UnavailableError } from '../common/errors';
import { DrainState } from '../common/lifecycle.module';
import { MetricsService } from '../metrics/metrics.service';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { Connection } from '../connections/connection';
import { ConnectionCommands } from '../connections/connection-commands';
import { ConnectionService } from '../connections/connection.service';
import { Admitted, HandshakeAdmission } from '../connections/handshake-admission';
import { parseClientFrame } from './frame-parser';
import { upgradeRefusal } from './upgrade-refusal';
import { WebSocketTransport } from './websocket-transport';

type AuthedRequest = IncomingMessage & {
  heraldPrincipal?: UserPrincipal;
  /** Its place under HERALD_MAX_PENDING_HANDSHAKES. */
  heraldAdmitted?: Admitted;
  /** Shed: accepted only to be closed with 1013 and this delay. */
  heraldShedMs?: number;
};

/**
 * `/ws`: authenticate at the upgrade, register the connection, forward each
 * parsed frame. Nothing else lives here.
 */
@WebSocketGateway({ path: '/ws' })
export class HeraldGateway implements OnGatewayInit<WebSocketServer>, OnGatewayConnection<WebSocket> {
  private readonly logger = new Logger(HeraldGateway.name);
  private readonly proxyTrust: ProxyTrust;
  private readonly listeners: ReturnType<HeraldGateway['makeListeners']>;

  constructor(
    private readonly auth: UpgradeAuthService,
    private readonly connections: ConnectionService,
    private readonly commands: ConnectionCommands,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly drain: DrainState,
    private readonly metrics: MetricsService,
    private readonly admission: HandshakeAdmission,
  ) {
    this.proxyTrust = compileProxyTrust(config.trustedProxies);
    this.listeners = this.makeListeners();
  }

  afterInit(server: WebSocketServer): void {
    // ws reads these per upgrade; they come from configuration, so they are set here.
    server.options.maxPayload = this.config.maxMessageBytes;
    server.options.perMessageDeflate = false;
    // A peer that never answers our close frame is dropped after HERALD_CLOSE_TIMEOUT_MS, not ws's 30 s.
    (server.options as ServerOptions & { closeTimeout: number }).closeTimeout = this.config.closeTimeoutMs;
    // The 101 names `herald.v1` when the client offers it, never another entry: a browser's token rides in
    // `herald.bearer.<token>` (ADR 0013) and must not come back in a response header. Offered nothing Herald
    // speaks, the 101 names none, which a browser that offered some treats as a failed connection.
    server.options.handleProtocols = (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false);
    server.options.verifyClient = (info, callback) => {
      const answer = (refusal: HeraldError | null): void => {
        if (!refusal) {
          callback(true);
          return;
        }
        (info.req as AuthedRequest).heraldAdmitted?.done();
        // The REST API's error body and headers (Retry-After, WWW-Authenticate), as `ws` writes a refusal.
        const reply = upgradeRefusal(refusal, info.req, this.config.replicaId);
        this.refused(info.req, reply.status, refusal.message);
        callback(false, reply.status, reply.body, reply.headers);
      };
      const refusal = this.refusalOf(info.req);
      if (refusal instanceof Promise) {
        refusal.then(answer, (error: unknown) => {
          this.logger.error({ message: 'upgrade not decided', error: (error as Error).message });
          answer(new UnavailableError('cannot decide the upgrade now; retry'));
        });
      } else answer(refusal);
    };
  }

  /**
   * Why an upgrade is refused, in this order: draining, at capacity (both before the upgrade, so a proxy
   * can send the client to another replica: Nginx's http_503), then the Origin and the token. Null when
   * it may go ahead; the principal is then on the request, or, when HERALD_MAX_PENDING_HANDSHAKES are being
   * set up, the delay to shed it with (after the upgrade: a browser reads a close reason, not a refusal).
   */
  private refusalOf(request: AuthedRequest): HeraldError | null | Promise<HeraldError | null> {
    // Shed before the credential is looked at: a ticket refused here for load is not used up.
    if (this.drain.isDraining) return new UnavailableError('server shutting down, reconnect');
    if (this.connections.atCapacity) return new UnavailableError('replica at its connection limit, retry shortly');
    // Shed, or queued so long that its client has most likely given up: turned away before any work.
    const admitted = this.admission.admit('websocket', request);
    if ('retryAfterMs' in admitted) {
      request.heraldShedMs = admitted.retryAfterMs;
      return null;
    }
    request.heraldAdmitted = admitted;
    // Given back if the socket goes before it becomes a connection (handleConnection removes this).
    request.socket.once('close', admitted.done);
    const decided = (decision: UpgradeDecision): HeraldError | null => {
      if (!decision.ok) return decision.error;
      request.heraldPrincipal = decision.principal;
      return null;
    };
    const decision = this.auth.decide(request);
    return decision instanceof Promise ? this.connections.holdPlace(decision).then(decided) : decided(decision);
  }

  /** One line and one count per refused upgrade; the URL (which may carry ?token= or ?ticket=) is never logged. */
  private refused(request: IncomingMessage, status: number, reason: string): void {
    this.metrics.upgradesRefused.inc({ status: String(status) });
    this.logger.log({
      message: 'upgrade refused',
      status,
      reason,
      remoteAddress: clientAddress(request, this.proxyTrust),
      origin: request.headers.origin?.slice(0, 256),
    });
  }

  handleConnection(socket: WebSocket, request: AuthedRequest): void {
    if (request.heraldShedMs !== undefined) {
      socket.on('error', ignore);
      socket.close(CloseCode.TryAgainLater, retryAfterReason(request.heraldShedMs));
      return;
    }
    const admitted = request.heraldAdmitted;
    if (admitted) request.socket.off('close', admitted.done);
    const principal = request.heraldPrincipal;
    if (!principal) {
      admitted?.done();
      socket.close(CloseCode.PolicyViolation, 'unauthenticated');
      return;
    }
    const connection = this.connections.open(new WebSocketTransport(socket, request.socket), {
      userId: principal.userId,
      tokenExpiresAt: principal.expiresAt,
      remoteAddress: clientAddress(request, this.proxyTrust),
      userAgent: String(request.headers['user-agent'] ?? '').slice(0, 256),
      features: featuresOfUrl(request.url),
      ...(admitted ? { admitted } : {}),
    });
    // The same four listeners for every socket (made once, in the constructor), finding the connection
    // on the socket: no closures per connection, which idle connections would carry for their lifetime.
    (socket as HeraldSocket)[CONNECTION] = connection;
    /* eslint-disable @typescript-eslint/unbound-method -- these listeners take `this` from the socket, by design */
    socket.on('pong', this.listeners.pong);
    socket.on('message', this.listeners.message);
    socket.on('close', this.listeners.close);
    socket.on('error', this.listeners.error);
    /* eslint-enable @typescript-eslint/unbound-method */
  }

  private makeListeners() {
    const connections = this.connections;
    const commands = this.commands;
    const logger = this.logger;
    return {
      pong: function (this: WebSocket): void {
        connectionOf(this).pong();
      },
      message: function (this: WebSocket, data: RawData, isBinary: boolean): void {
        if (isBinary) {
          this.close(CloseCode.UnsupportedData, 'binary frames are not supported');
          return;
        }
        commands.received(connectionOf(this), parseClientFrame(rawToString(data)));
      },
      close: function (this: WebSocket, code: number): void {
        void connections.closed(connectionOf(this), code);
      },
      error: function (this: WebSocket, error: Error): void {
        logger.warn({ message: 'socket error', connectionId: connectionOf(this).id, error: error.message });
      },
    };
  }
}

const CONNECTION = Symbol('herald.connection');

/** A `ws` socket that knows its Herald connection. */
type HeraldSocket = WebSocket & { [CONNECTION]: Connection };

function connectionOf(socket: WebSocket): Connection {
  return (socket as HeraldSocket)[CONNECTION];
}

function ignore(): void {}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
