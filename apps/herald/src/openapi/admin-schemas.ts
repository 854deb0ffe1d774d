import { ApiProperty } from '@nestjs/swagger';
import type {
  AdminBroadcastPreview,
  AdminConnection,
  AdminConnectionsResponse,
  AdminLoginRequest,
  AdminNotificationSummary,
  AdminNotificationsResponse,
  AdminSession,
  AdminStats,
  Audience,
} from '@herald/protocol';
import { DeliveryCountsDto } from './schemas';

/*
 * OpenAPI schemas of the admin API's bodies; each class implements its type in
 * @herald/protocol, so the description and the wire types stay in step.
 */

const perReplica = {
  type: 'object',
  additionalProperties: { type: 'integer' },
  example: { 'herald-1': 12, 'herald-2': 11 },
  description: 'Live connections per replica id',
} as const;

export class AdminLoginRequestDto implements AdminLoginRequest {
  @ApiProperty({ description: 'HERALD_ADMIN_PASSWORD' }) password!: string;
}

export class AdminSessionDto implements AdminSession {
  @ApiProperty({ description: 'Send as `Authorization: Bearer <token>` (or `?token=` on /admin/api/events)' })
  token!: string;

  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}

export class AdminConnectionDto implements AdminConnection {
  @ApiProperty({ format: 'uuid' }) connectionId!: string;
  @ApiProperty({ example: 'alice' }) userId!: string;
  @ApiProperty({ example: 'herald-1' }) replicaId!: string;
  @ApiProperty({ format: 'date-time' }) connectedAt!: string;
  @ApiProperty({ example: '203.0.113.9' }) remoteAddress!: string;
  @ApiProperty({ example: 'Mozilla/5.0' }) userAgent!: string;
  @ApiProperty({ type: [String], example: ['news'] }) topics!: string[];
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) lastAckAt!: string | null;
}

export class AdminConnectionsResponseDto implements AdminConnectionsResponse {
  @ApiProperty({ type: [AdminConnectionDto] }) items!: AdminConnectionDto[];
  @ApiProperty({ description: 'Connections matching the filter' }) total!: number;
  @ApiProperty(perReplica) perReplica!: Record<string, number>;
}

export class AdminBroadcastPreviewDto implements AdminBroadcastPreview {
  @ApiProperty({ description: 'Users the audience reaches now', example: 42 }) recipients!: number;
}

export class AdminNotificationSummaryDto implements AdminNotificationSummary {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 1042 }) seq!: number;
  @ApiProperty({ example: 'maintenance' }) event!: string;
  @ApiProperty({ description: 'API key id, or `admin-console`', example: 'admin-console' }) publisherId!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { all: true } }) audience!: Audience;
  @ApiProperty({ type: String, nullable: true }) topic!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty() recipients!: number;
  @ApiProperty({ type: DeliveryCountsDto }) counts!: DeliveryCountsDto;
}

class HistoryReachDto {
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the oldest notification still kept was published; null when none is',
  })
  oldestAt!: string | null;
  @ApiProperty({ description: 'HERALD_RETENTION_HOURS: how long a notification is kept after it is final' })
  retentionHours!: number;
}

export class AdminNotificationsResponseDto implements AdminNotificationsResponse {
  @ApiProperty({ type: [AdminNotificationSummaryDto] }) items!: AdminNotificationSummaryDto[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `?before=` for older ones; null on the last page',
  })
  nextCursor!: string | null;
  @ApiProperty({ type: HistoryReachDto, description: 'How far back the history reaches' }) reach!: HistoryReachDto;
}

class ConnectionTotalsDto {
  @ApiProperty() total!: number;
  @ApiProperty(perReplica) perReplica!: Record<string, number>;
}

class MinuteCountDto {
  @ApiProperty({ format: 'date-time' }) minute!: string;
  @ApiProperty() count!: number;
}

class AckLatencyDto {
  @ApiProperty({ type: Number, nullable: true }) p50!: number | null;
  @ApiProperty({ type: Number, nullable: true }) p95!: number | null;
  @ApiProperty() samples!: number;
}

export class AdminStatsDto implements AdminStats {
  @ApiProperty({ format: 'date-time' }) at!: string;
  @ApiProperty({ type: ConnectionTotalsDto }) connections!: ConnectionTotalsDto;
  @ApiProperty({ type: [MinuteCountDto], description: 'The last 30 minutes, oldest first' })
  notificationsPerMinute!: MinuteCountDto[];
  @ApiProperty({ type: AckLatencyDto, description: 'Publish → ack, deliveries acked in the last 5 minutes' })
  ackLatencyMs!: AckLatencyDto;
  @ApiProperty() redeliveriesLastHour!: number;
  @ApiProperty() failuresLastHour!: number;
}
