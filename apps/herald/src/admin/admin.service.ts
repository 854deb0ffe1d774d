import { Inject, Injectable, Logger } from '@nestjs/common';
import type {
  AdminBroadcastPreview,
  AdminConnectionsQuerySchema,
  AdminConnectionsResponse,
  AdminNotificationsQuerySchema,
  AdminNotificationsResponse,
  AdminStats,
  NotificationQuerySchema,
  NotificationView,
  PublishResponse,
  ValidPublishRequest,
} from '@herald/protocol';
import type { z } from 'zod';
import { NotFoundError, UnavailableError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { Bus } from '../routing/bus';
import { PresenceEntry, PresenceRepository } from '../routing/presence.repository';
import { AdminRepository, NotificationFilter } from '../record/admin.repository';
import { PublishService } from '../publish/publish.service';

/** Publisher id recorded on notifications sent from the console. */
export const ADMIN_PUBLISHER = 'admin-console';

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

  async connections({ userId }: z.output<typeof AdminConnectionsQuerySchema>): Promise<AdminConnectionsResponse> {
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

  async preview(request: ValidPublishRequest): Promise<AdminBroadcastPreview> {
    return { recipients: await this.store(() => this.admin.audienceSize(request.to)) };
  }

  broadcast(
    body: ValidPublishRequest,
    idempotencyKey: string | undefined,
  ): Promise<{ response: PublishResponse; replayed: boolean }> {
    return this.publish.publish(ADMIN_PUBLISHER, body, idempotencyKey);
  }

  async notifications(query: z.output<typeof AdminNotificationsQuerySchema>): Promise<AdminNotificationsResponse> {
    const { limit, event, userId, status, from, to, before } = query;
    const filter: NotificationFilter = { limit: limit + 1 };
    if (event !== undefined) filter.event = event;
    if (userId !== undefined) filter.userId = userId;
    if (status !== undefined) filter.status = status;
    if (from !== undefined) filter.from = from;
    if (to !== undefined) filter.to = to;
    if (before !== undefined) filter.beforeSeq = before;
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

  notification(id: string, query: z.output<typeof NotificationQuerySchema>): Promise<NotificationView> {
    return this.publish.get(null, id, query);
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

function countPerReplica(entries: PresenceEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) counts[entry.replicaId] = (counts[entry.replicaId] ?? 0) + 1;
  return counts;
}
