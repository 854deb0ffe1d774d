import { Inject, Injectable, Logger } from '@nestjs/common';
import { ClientFrame, CloseCode, ErrorCode, type InboxAction, LimitCloseReason } from '@herald/protocol';
import { AckService } from '../acks/ack.service';
import { UserTokenService } from '../auth/user-token.service';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { INBOX_OFF_MESSAGE, InboxService } from '../inbox/inbox.service';
import { ParseResult } from '../gateway/frame-parser';
import { MetricsService } from '../metrics/metrics.service';
import { UserRepository } from '../record/user.repository';
import { Connection } from './connection';
import { ConnectionService } from './connection.service';

/**
 * Frames in: a connection's parsed frames rate-limited, its commands run within the per-connection limits
 * (HERALD_MAX_COMMANDS_IN_FLIGHT, HERALD_MAX_QUEUED_COMMANDS) and answered on it: ping, token refresh,
 * subscribe and unsubscribe here; acks by AckService.
 */
@Injectable()
export class ConnectionCommands {
  private readonly logger = new Logger(ConnectionCommands.name);

  constructor(
    /** Tracks the commands in flight, which the shutdown waits for. */
    private readonly connections: ConnectionService,
    private readonly acks: AckService,
    private readonly users: UserRepository,
    private readonly tokens: UserTokenService,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly inbox: InboxService,
  ) {}

  /**
   * One frame from the client, parsed: rate-limited first (a frame that cannot be parsed costs the same
   * as one that can), then answered with an error or run as a command.
   */
  received(connection: Connection, parsed: ParseResult): void {
    if (connection.ignoreFrames) return;
    const acks = parsed.ok ? acksIn(parsed.frame) : 0;
    const admission = connection.admit(acks);
    const withId = parsed.ok ? echoOf(parsed.frame) : parsed.id !== undefined ? { id: parsed.id } : {};
    if (admission === 'close') {
      this.metrics.rateLimitedFrames.inc();
      this.logger.log({
        message: 'rate limit exceeded; closing',
        connectionId: connection.id,
        userId: connection.userId,
      });
      connection.ignoreFrames = true;
      connection.close(CloseCode.PolicyViolation, LimitCloseReason.RateLimitExceeded);
      return;
    }
    if (admission === 'limited') {
      this.metrics.rateLimitedFrames.inc();
      connection.send({
        type: 'error',
        code: ErrorCode.RateLimited,
        message: `more than ${this.config.clientFramesPerSecond} frames per second; slow down or be disconnected`,
        ...withId,
      });
      return;
    }
    if (!parsed.ok) {
      connection.send({ type: 'error', code: parsed.code, message: parsed.message, ...withId });
      return;
    }
    connection.acked(acks);
    this.command(connection, parsed.frame);
  }

  /**
   * Runs one client command and answers on the connection. A ping or a token refresh is answered
   * at once; commands that touch the store run at most
   * HERALD_MAX_COMMANDS_IN_FLIGHT at a time per connection, so one socket
   * cannot take the database pool, and wait in a bounded queue beyond that.
   */
  private command(connection: Connection, frame: ClientFrame): void {
    if (frame.type === 'ping' || frame.type === 'auth') {
      this.connections.track(this.run(connection, frame));
      return;
    }
    if (frame.type === 'ack' || frame.type === 'acks') {
      // Acks are written in batches for the whole replica (AckWriter), so they do not
      // hold the pool the way other commands can: many run at once, up to the queue's bound, counted per ack.
      const acks = acksIn(frame);
      if (connection.acksRunning + acks > this.config.maxQueuedCommands) {
        this.refuseCommand(connection, frame);
        return;
      }
      connection.acksRunning += acks;
      this.connections.track(this.run(connection, frame).finally(() => (connection.acksRunning -= acks)));
      return;
    }
    if (connection.commandsRunning < this.config.maxCommandsInFlight) {
      this.start(connection, frame);
    } else if ((connection.commandQueue?.length ?? 0) < this.config.maxQueuedCommands) {
      (connection.commandQueue ??= []).push(frame);
    } else {
      this.refuseCommand(connection, frame);
    }
  }

  private refuseCommand(connection: Connection, frame: ClientFrame): void {
    this.metrics.rateLimitedFrames.inc();
    connection.send({
      type: 'error',
      code: ErrorCode.RateLimited,
      message: 'too many commands waiting on this connection; send fewer at once',
      ...echoOf(frame),
    });
  }

  private start(connection: Connection, frame: ClientFrame): void {
    connection.commandsRunning += 1;
    const work = this.run(connection, frame).finally(() => {
      connection.commandsRunning -= 1;
      const next = connection.commandQueue?.shift();
      if (connection.commandQueue?.length === 0) connection.commandQueue = null;
      if (next) this.start(connection, next);
    });
    this.connections.track(work);
  }

  private async run(connection: Connection, frame: ClientFrame): Promise<void> {
    try {
      switch (frame.type) {
        case 'ping':
          connection.send(
            frame.id === undefined
              ? { type: 'pong', timestamp: new Date().toISOString() }
              : { type: 'pong', id: frame.id, timestamp: new Date().toISOString() },
          );
          return;
        case 'ack':
          await this.acks.ack(connection, frame);
          return;
        case 'acks':
          await this.acks.acks(connection, frame);
          return;
        case 'auth': {
          this.refreshToken(connection, frame.token, frame.id);
          return;
        }
        case 'subscribe':
        case 'unsubscribe': {
          const outcome =
            frame.type === 'subscribe'
              ? await this.users.subscribe(connection.userId, frame.channel, this.config.maxTopicsPerUser)
              : (await this.users.unsubscribe(connection.userId, frame.channel))
                ? 'added'
                : 'exists';
          if (outcome === 'limit') {
            connection.send({
              type: 'error',
              code: ErrorCode.BadRequest,
              message: `topic limit reached (${this.config.maxTopicsPerUser}); unsubscribe from one first`,
              ...(frame.id !== undefined ? { id: frame.id } : {}),
            });
          } else if (frame.id !== undefined) {
            connection.send({ type: 'ack', id: frame.id, status: outcome === 'added' ? 'ok' : 'duplicate' });
          }
          return;
        }
        case 'seen':
        case 'unseen':
        case 'read':
        case 'unread':
        case 'archive':
        case 'unarchive':
          await this.inboxChange(connection, frame.type, frame.ids, frame.id);
          return;
      }
    } catch (error) {
      this.logger.error({
        message: 'command failed',
        connectionId: connection.id,
        type: frame.type,
        error: (error as Error).message,
      });
      connection.send({
        type: 'error',
        code: ErrorCode.Unavailable,
        message: 'could not complete the command, retry',
        ...echoOf(frame),
      });
    }
  }

  /**
   * A state frame of the inbox (`read`, `seen`, …): applied to the ids that are the user's items, answered
   * `ack` (with `id`) or `FORBIDDEN` naming the others. The change reaches the user's connections as `state`.
   */
  private async inboxChange(connection: Connection, action: InboxAction, ids: string[], id?: string): Promise<void> {
    const withId = id !== undefined ? { id } : {};
    if (!this.inbox.enabled) {
      connection.send({
        type: 'error',
        code: ErrorCode.NotFound,
        message: INBOX_OFF_MESSAGE,
        ...withId,
      });
      return;
    }
    const { forbidden } = await this.inbox.apply(connection.userId, action, ids);
    if (forbidden.length > 0) {
      connection.send({
        type: 'error',
        code: ErrorCode.Forbidden,
        message: `${forbidden.length} of the ids are not notifications in this user's inbox; the others were applied`,
        ids: forbidden,
        ...withId,
      });
    } else if (id !== undefined) {
      connection.send({ type: 'ack', id, status: 'ok' });
    }
  }

  /** In-band token refresh: the same user's fresh token moves the connection's expiry on. */
  private refreshToken(connection: Connection, token: string, id: string | undefined): void {
    const withId = id !== undefined ? { id } : {};
    const result = this.tokens.verify(token);
    if (!result.ok) {
      connection.send({ type: 'error', code: ErrorCode.Unauthorized, message: result.reason, ...withId });
      return;
    }
    if (result.principal.userId !== connection.userId) {
      connection.send({
        type: 'error',
        code: ErrorCode.Forbidden,
        message: 'the token names another user; reconnect to switch users',
        ...withId,
      });
      return;
    }
    connection.info.tokenExpiresAt = result.principal.expiresAt;
    this.logger.debug?.({
      message: 'token refreshed',
      connectionId: connection.id,
      expiresAt: result.principal.expiresAt,
    });
    if (id !== undefined) connection.send({ type: 'ack', id, status: 'ok' });
  }
}

/** How many acks a frame carries (0: not an ack frame), for the limits. */
function acksIn(frame: ClientFrame): number {
  if (frame.type === 'ack') return 1;
  return frame.type === 'acks' ? frame.ids.length : 0;
}

/** What an error about this frame echoes: the command's `id`, or the ids of an `acks` frame. */
function echoOf(frame: ClientFrame): { id?: string; ids?: string[] } {
  if (frame.type === 'acks') return { ids: frame.ids };
  return frame.id !== undefined ? { id: frame.id } : {};
}
