import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  AdminBroadcastPreview,
  AdminConnectionsResponse,
  AdminNotificationsResponse,
  AdminStats,
  DELIVERY_STATUSES,
  DeliveryStatus,
  NotificationView,
  PublishResponse,
  USER_ID_PATTERN,
} from '@herald/protocol';
import { BadRequestError, NotFoundError, UnavailableError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { Bus } from '../routing/bus';
import { PresenceEntry, PresenceRepository } from '../routing/presence.repository';
import { AdminRepository, NotificationFilter } from '../record/admin.repository';
import { parsePublishRequest } from '../publish/publish.dto';
import { PublishService } from '../publish/publish.service';

/** Publisher id recorded on notifications sent from the console. */
export const ADMIN_PUBLISHER = 'admin-console';

type Query = Record<string, unknown>;

/** What the console asks of the service: live connections, broadcasts, history, statistics. */
@Injectable()
export class AdminService {
  private readonly logger = new Logger(AdminService.name);

  constructor(
    private readonly presence: PresenceRepository,
    private readonly bus: Bus,
    private readonly admin: AdminRepository,
    private readonly publish: PublishService,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {}

  async connections(query: Query): Promise<AdminConnectionsResponse> {
    const userId = optional(query.userId, 'userId', (v) => USER_ID_PATTERN.test(v), 'a user id');
    const all = await this.store(() => this.presence.list());
    const chosen = all
      .filter((e) => userId === undefined || e.userId === userId)
      .sort((a, b) => a.connectedAt.localeCompare(b.connectedAt));
    const facts = await this.store(() => this.admin.userFacts([...new Set(chosen.map((e) => e.userId))]));
    return {
      items: chosen.map((e) => ({
        ...e,
        topics: facts.get(e.userId)?.topics ?? [],
        lastAckAt: facts.get(e.userId)?.lastAckAt ?? null,
      })),
      total: chosen.length,
      perReplica: countPerReplica(all),
    };
  }

  /** Asks the replica holding the connection to close it (1000, "disconnected by an admin"). */
  async disconnect(connectionId: string): Promise<void> {
    const entry: PresenceEntry | undefined = (await this.store(() => this.presence.list())).find(
      (e) => e.connectionId === connectionId,
    );
    if (!entry) throw new NotFoundError('no live connection with this id');
    const reached = await this.store(() =>
      this.bus.publishToUsers([entry.userId], { kind: 'disconnect', connectionId }),
    );
    // Presence outlives a replica by a few beats: nobody listening means the connection is gone already.
    if (reached === 0) throw new NotFoundError('no replica holds this connection any more');
    this.logger.log({ message: 'admin disconnect', connectionId, userId: entry.userId, replicaId: entry.replicaId });
  }

  async preview(body: unknown): Promise<AdminBroadcastPreview> {
    const input = parsePublishRequest(body, this.config);
    return { recipients: await this.store(() => this.admin.audienceSize(input.audience)) };
  }

  broadcast(
    body: unknown,
    idempotencyKey: string | undefined,
  ): Promise<{ response: PublishResponse; replayed: boolean }> {
    return this.publish.publish(ADMIN_PUBLISHER, body, idempotencyKey);
  }

  async notifications(query: Query): Promise<AdminNotificationsResponse> {
    const limitRaw = optional(
      query.limit,
      'limit',
      (v) => /^\d{1,3}$/.test(v) && +v >= 1 && +v <= 200,
      'a whole number from 1 to 200',
    );
    const limit = limitRaw === undefined ? 50 : Number(limitRaw);
    const filter: NotificationFilter = { limit: limit + 1 };
    const event = optional(query.event, 'event', (v) => v.length >= 1 && v.length <= 128, '1-128 characters');
    if (event !== undefined) filter.event = event;
    const userId = optional(query.userId, 'userId', (v) => USER_ID_PATTERN.test(v), 'a user id');
    if (userId !== undefined) filter.userId = userId;
    const status = optional(
      query.status,
      'status',
      (v) => (DELIVERY_STATUSES as readonly string[]).includes(v),
      DELIVERY_STATUSES.join(', '),
    );
    if (status !== undefined) filter.status = status as DeliveryStatus;
    const from = optional(query.from, 'from', (v) => !Number.isNaN(Date.parse(v)), 'an ISO 8601 time');
    if (from !== undefined) filter.from = new Date(from);
    const to = optional(query.to, 'to', (v) => !Number.isNaN(Date.parse(v)), 'an ISO 8601 time');
    if (to !== undefined) filter.to = new Date(to);
    const before = optional(query.before, 'before', (v) => /^\d{1,15}$/.test(v), 'the nextCursor of a previous page');
    if (before !== undefined) filter.beforeSeq = Number(before);
    const [rows, oldestAt] = await Promise.all([
      this.store(() => this.admin.listNotifications(filter)),
      this.store(() => this.admin.oldestNotification()),
    ]);
    const items = rows.slice(0, limit);
    return {
      items,
      nextCursor: rows.length > limit ? String(items[items.length - 1]!.seq) : null,
      reach: { oldestAt: oldestAt?.toISOString() ?? null, retentionHours: this.config.retentionMs / 3_600_000 },
    };
  }

  notification(id: string, query: Query): Promise<NotificationView> {
    return this.publish.get(null, id, query.limit, query.after);
  }

  async stats(): Promise<AdminStats> {
    const [entries, store] = await Promise.all([
      this.store(() => this.presence.list()),
      this.store(() => this.admin.stats()),
    ]);
    return {
      at: new Date().toISOString(),
      connections: { total: entries.length, perReplica: countPerReplica(entries) },
      ...store,
    };
  }

  private async store<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      this.logger.error({ message: 'admin read failed', error: (error as Error).message });
      throw new UnavailableError('a store is unavailable, retry later');
    }
  }
}

/** A query parameter: absent, or a string that passes `valid`; anything else is a 400 naming it. */
function optional(value: unknown, field: string, valid: (v: string) => boolean, expected: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !valid(value)) {
    throw new BadRequestError(`${field} must be ${expected}`, [{ field, reason: `must be ${expected}` }]);
  }
  return value;
}

function countPerReplica(entries: PresenceEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) counts[entry.replicaId] = (counts[entry.replicaId] ?? 0) + 1;
  return counts;
}
