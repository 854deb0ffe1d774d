import { Injectable, Logger } from '@nestjs/common';
import { AcksResponse, CloseCode, retryAfterReason } from '@herald/protocol';
import { requestedFeatures } from './requested-features';
import type { FastifyReply } from 'fastify';
import { AckService } from '../acks/ack.service';
import { UpgradeAuthService } from '../auth/upgrade-auth.service';
import { UserRequest } from '../auth/user-token.guard';
import { BadRequestError, NotFoundError, UnavailableError } from '../common/errors';
import { DrainState } from '../common/lifecycle.module';
import { ConnectionService } from '../connections/connection.service';
import { HandshakeAdmission } from '../connections/handshake-admission';
import type { UserPrincipal } from '../auth/user-token.service';
import { DeliveryService } from '../delivery/delivery.service';
import { isNotificationId } from './frame-parser';
import { SseTransport } from './sse-transport';

/**
 * The Server-Sent Events fallback for networks that block WebSockets: the
 * same connection life as `/ws` (register, presence, welcome, replay, live),
 * with acks arriving over `POST /v1/acks` instead of on the socket.
 */
@Injectable()
export class StreamService {
  private readonly logger = new Logger(StreamService.name);

  constructor(
    private readonly connections: ConnectionService,
    private readonly delivery: DeliveryService,
    private readonly drain: DrainState,
    private readonly auth: UpgradeAuthService,
    private readonly acks: AckService,
    private readonly admission: HandshakeAdmission,
  ) {}

  /** Turns the response into an event stream; it stays open until either side ends it. */
  async open(request: UserRequest, reply: FastifyReply): Promise<void> {
    // Before any byte is written, so a proxy can send the client to another replica; and before a ticket
    // is consumed, so a stream shed for load leaves it unused.
    if (this.drain.isDraining) throw new UnavailableError('server shutting down, reconnect');
    if (this.connections.atCapacity) throw new UnavailableError('replica at its connection limit, retry shortly');
    const resumeAfterSeq = lastEventIdOf(request);
    // Shed, or queued so long that its client has most likely given up (see HeraldGateway).
    const admitted = this.admission.admit('sse', request.raw);
    if ('retryAfterMs' in admitted) {
      const delayMs = admitted.retryAfterMs;
      throw new UnavailableError(retryAfterReason(delayMs), Math.ceil(delayMs / 1000));
    }
    let principal: UserPrincipal;
    try {
      const ticket = request.user ? null : this.auth.deferredTicket(request.raw);
      principal =
        ticket === null
          ? request.user!
          : await this.connections.holdPlace(this.auth.ticketPrincipal(request.raw, ticket));
    } catch (error) {
      admitted.done();
      throw error;
    }
    if (reply.raw.destroyed) {
      admitted.done();
      return;
    }
    const transport = new SseTransport(reply);
    const { response } = transport;
    const connection = this.connections.open(transport, {
      userId: principal.userId,
      tokenExpiresAt: principal.expiresAt,
      remoteAddress: request.ip,
      userAgent: String(request.headers['user-agent'] ?? '').slice(0, 256),
      features: requestedFeatures(request.query.features),
      ...(resumeAfterSeq !== undefined ? { resumeAfterSeq } : {}),
      admitted,
    });
    response.once('close', () => {
      // The client went away (no close frame on HTTP): counted as 1001, going away.
      void this.connections.closed(connection, transport.closeCode ?? CloseCode.GoingAway);
    });
    response.once('error', (error: Error) =>
      this.logger.warn({ message: 'stream error', connectionId: connection.id, error: error.message }),
    );
  }

  /** The client answered its stream's heartbeat; the stream may be held by another replica. */
  /** `connectionId`: the stream's, lowered (StreamPongRequestSchema). */
  async pong(userId: string, connectionId: string): Promise<void> {
    let held: boolean;
    try {
      held = await this.delivery.routeStreamAlive(userId, connectionId);
    } catch (error) {
      this.logger.warn({ message: 'stream pong not routed', userId, error: (error as Error).message });
      throw new UnavailableError('could not reach the replica holding the stream; retry');
    }
    if (!held) throw new NotFoundError('no open stream with this connectionId; reconnect');
  }

  /** `ids`: 1 to MAX_ACKS_PER_REQUEST notification ids (AcksRequestSchema). */
  async ack(userId: string, ids: string[]): Promise<AcksResponse> {
    const outcomes = await this.acks.ackAll(
      userId,
      ids.map((raw) => (isNotificationId(raw) ? raw.toLowerCase() : raw)),
      isNotificationId,
    );
    if (outcomes.includes(null)) {
      this.logger.error({ message: 'ack failed', userId, failed: outcomes.filter((o) => o === null).length });
      // Acks are idempotent: the client sends the same ids again.
      throw new UnavailableError('the notification store is unavailable; retry the acks');
    }
    return { results: ids.map((raw, i) => ({ id: raw, status: outcomes[i]! })) };
  }
}

/** `Last-Event-ID` (set by EventSource on its reconnects) or `?lastEventId=` for a first connect. */
function lastEventIdOf(request: UserRequest): number | undefined {
  const header = request.headers['last-event-id'];
  const query = request.query.lastEventId;
  const fromHeader = typeof header === 'string' && header !== '';
  const raw = fromHeader ? header : typeof query === 'string' ? query : '';
  if (raw === '') return undefined;
  if (!/^\d{1,15}$/.test(raw.trim())) {
    const field = fromHeader ? 'Last-Event-ID' : 'lastEventId';
    throw new BadRequestError(`${field} must be the seq of a notification (a whole number)`, [
      { field, reason: 'must be a whole number' },
    ]);
  }
  return Number(raw.trim());
}
