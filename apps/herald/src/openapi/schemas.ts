import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import {
  DELIVERY_STATUSES,
  ErrorCode,
  MAX_ACKS_PER_REQUEST,
  type AckOutcome,
  type AcksRequest,
  type AcksResponse,
  type StreamPongRequest,
  type ApiErrorBody,
  type DeliveryStatus,
  type DeliveryView,
  type JsonValue,
  type NotificationView,
  type PublishRequest,
  type PublishResponse,
  type TokenRequest,
  type TicketResponse,
  type TokenResponse,
} from '@herald/protocol';
import type { ReadyReport } from '../health/health.service';

/*
 * OpenAPI schemas of the REST bodies. Each class `implements` its type in
 * @herald/protocol, so the compiler keeps the description and the wire types
 * in step; they are used for documentation only (validation is the service's).
 */

export class UsersAudience {
  @ApiProperty({
    description: '1 to HERALD_MAX_RECIPIENTS user ids',
    example: ['alice', 'bob'],
    type: [String],
    minItems: 1,
  })
  users!: string[];
}

export class TopicAudience {
  @ApiProperty({ description: 'Everyone subscribed to this topic when it is published', example: 'orders' })
  topic!: string;
}

export class EveryoneAudience {
  @ApiProperty({ description: 'Every user Herald has seen', enum: [true], example: true })
  all!: true;
}

export const AUDIENCE_MODELS = [UsersAudience, TopicAudience, EveryoneAudience];

const audienceSchema = {
  oneOf: AUDIENCE_MODELS.map((model) => ({ $ref: getSchemaPath(model) })),
};

/** Any JSON value: object, array, string, number, boolean or null. */
const anyJson = {
  description: 'Any JSON value',
  // OpenAPI 3.0 has no null type, and `nullable` counts only beside a `type`: null rides on the object branch.
  anyOf: [
    { type: 'object', additionalProperties: true, nullable: true },
    { type: 'array', items: {} },
    { type: 'string' },
    { type: 'number' },
    { type: 'boolean' },
  ],
};

export class PublishRequestDto implements PublishRequest {
  @ApiProperty({ description: 'Who receives it: a list of users, a topic, or everyone.', ...audienceSchema })
  to!: PublishRequest['to'];

  @ApiProperty({ description: '1-128 characters of letters, digits and `_ . : -`', example: 'order.shipped' })
  event!: string;

  @ApiPropertyOptional({
    ...anyJson,
    description: 'Any JSON, at most HERALD_MAX_PAYLOAD_BYTES serialized',
    example: { order: 42 },
  })
  payload?: JsonValue;

  @ApiPropertyOptional({
    description: 'How long it may be delivered; default HERALD_DEFAULT_TTL_SECONDS, at most HERALD_MAX_TTL_SECONDS',
    type: 'integer',
    minimum: 1,
    example: 3600,
  })
  ttlSeconds?: number;
}

export class PublishResponseDto implements PublishResponse {
  @ApiProperty({ format: 'uuid', example: '3f1c2a9e-5b7d-4c1e-9a53-2f0d8e6b1c47' })
  id!: string;

  @ApiProperty({ description: 'Position in the global publish order', example: 1042 })
  seq!: number;

  @ApiProperty({ description: 'Deliveries created (0 for a topic nobody follows)', example: 1 })
  recipients!: number;
}

export class DeliveryViewDto implements DeliveryView {
  @ApiProperty({ example: 'alice' })
  userId!: string;

  @ApiProperty({ enum: DELIVERY_STATUSES, example: 'acked' })
  status!: DeliveryStatus;

  @ApiProperty({ description: 'Sends so far', example: 1 })
  attempts!: number;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  firstSentAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  lastSentAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  ackedAt!: string | null;

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;
}

export class DeliveryCountsDto implements Record<DeliveryStatus, number> {
  @ApiProperty({ example: 0 }) pending!: number;
  @ApiProperty({ example: 0 }) sent!: number;
  @ApiProperty({ example: 1 }) acked!: number;
  @ApiProperty({ example: 0 }) expired!: number;
  @ApiProperty({ example: 0 }) failed!: number;
}

export class DeliveryPageDto {
  @ApiProperty({ type: [DeliveryViewDto] })
  items!: DeliveryViewDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `?after=` for the next page; null on the last page',
  })
  nextCursor!: string | null;
}

export class NotificationViewDto implements NotificationView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 1042 }) seq!: number;
  @ApiProperty({ example: 'order.shipped' }) event!: string;
  @ApiProperty({ ...anyJson, example: { order: 42 } }) payload!: JsonValue;
  @ApiProperty(audienceSchema) audience!: NotificationView['audience'];
  @ApiProperty({ type: String, nullable: true, example: null }) topic!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({ example: 1 }) recipients!: number;
  @ApiProperty({ type: DeliveryCountsDto }) counts!: DeliveryCountsDto;
  @ApiProperty({ type: DeliveryPageDto }) deliveries!: DeliveryPageDto;
}

export class TokenRequestDto implements TokenRequest {
  @ApiProperty({ description: '1-128 characters of letters, digits and `_ . @ : -`', example: 'alice' })
  userId!: string;

  @ApiPropertyOptional({
    description: 'Lifetime; at most HERALD_TOKEN_MAX_TTL_SECONDS',
    type: 'integer',
    minimum: 1,
    example: 3600,
  })
  ttlSeconds?: number;
}

export class TokenResponseDto implements TokenResponse {
  @ApiProperty({ description: 'HS256 JWT for `/ws` (`?token=` or `Authorization: Bearer`)' })
  token!: string;

  @ApiProperty({ format: 'date-time' })
  expiresAt!: string;
}

export class TicketResponseDto implements TicketResponse {
  @ApiProperty({
    description:
      "One-time ticket: `/ws?ticket=`, `/v1/stream?ticket=` (or, from the console's own mint, `/admin/api/events?ticket=`)",
  })
  ticket!: string;

  @ApiProperty({ format: 'date-time', description: 'Worth nothing after this (30 s), or once used.' })
  expiresAt!: string;
}

export class StreamPongRequestDto implements StreamPongRequest {
  @ApiProperty({ format: 'uuid', description: "The `connectionId` of the stream's `welcome` event." })
  connectionId!: string;
}

export class AcksRequestDto implements AcksRequest {
  @ApiProperty({
    type: [String],
    minItems: 1,
    maxItems: MAX_ACKS_PER_REQUEST,
    description: 'Notification ids (the `id` of each notification event).',
    example: ['0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11'],
  })
  ids!: string[];
}

export class AckResultDto {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['ok', 'duplicate', 'expired', 'forbidden'] }) status!: AckOutcome;
}

export class AcksResponseDto implements AcksResponse {
  @ApiProperty({ type: [AckResultDto] }) results!: AckResultDto[];
}

export class ErrorDetailDto {
  @ApiProperty({ example: 'event' }) field!: string;
  @ApiProperty({ example: 'required: 1-128 characters of letters, digits and _ . : -' }) reason!: string;
}

export class ErrorDto {
  @ApiProperty({ enum: Object.values(ErrorCode), example: ErrorCode.BadRequest })
  code!: ErrorCode;

  @ApiProperty({ example: 'event: required: 1-128 characters of letters, digits and _ . : -' })
  message!: string;

  @ApiPropertyOptional({ type: [ErrorDetailDto], description: 'Only with BAD_REQUEST' })
  details?: ErrorDetailDto[];

  @ApiProperty({ description: 'X-Request-Id of the request', example: 'trace-123' })
  requestId!: string;
}

export class ApiErrorBodyDto implements ApiErrorBody {
  @ApiProperty({ type: ErrorDto })
  error!: ErrorDto;
}

export class LiveDto {
  @ApiProperty({ enum: ['ok'] }) status!: 'ok';
}

export class ReadyChecksDto {
  @ApiProperty({ enum: ['up', 'down'] }) postgres!: 'up' | 'down';
  @ApiProperty({ enum: ['up', 'down'] }) redis!: 'up' | 'down';
}

export class ReadyDto implements ReadyReport {
  @ApiProperty({ enum: ['ok', 'unavailable', 'draining'], example: 'ok' }) status!: ReadyReport['status'];
  @ApiProperty({ example: 'herald-1' }) replicaId!: string;
  @ApiProperty({ type: ReadyChecksDto }) checks!: ReadyChecksDto;
}

/** An error response: the one error body, with an example of this status. */
export function errorExample(code: ErrorCode, message: string, details?: { field: string; reason: string }[]) {
  return { error: { code, message, ...(details ? { details } : {}), requestId: 'trace-123' } };
}
