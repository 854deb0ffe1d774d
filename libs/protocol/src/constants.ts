/**
 * The protocol's codes, patterns and fixed limits: plain values, imported by the schemas (`publish.ts`,
 * `rest.ts`, `admin.ts`, `frames.ts`) and re-exported by `index.ts`.
 */

/** Stable codes carried by `error` frames and REST error bodies. */
export const ErrorCode = {
  BadRequest: 'BAD_REQUEST',
  UnknownType: 'UNKNOWN_TYPE',
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  /** A plain HTTP request to `/ws`, or an upgrade to something other than WebSocket version 13 (HTTP 426). */
  UpgradeRequired: 'UPGRADE_REQUIRED',
  RateLimited: 'RATE_LIMITED',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  IdempotencyConflict: 'IDEMPOTENCY_CONFLICT',
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Longest token an `auth` frame (or `?token=`) may carry, in characters. */
export const MAX_TOKEN_LENGTH = 4096;

/** Topic names: 1–128 characters of letters, digits and `_ . : -`. */
export const TOPIC_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** User ids: 1–128 characters of letters, digits and `_ . @ : -`. */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.@:-]{1,128}$/;
/** Command ids chosen by the client: 1–64 printable ASCII characters. */
export const COMMAND_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;
/** Event names: 1–128 characters of letters, digits and `_ . : -`. */
export const EVENT_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A UUID, any case (notification and connection ids). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Most ids one `POST /v1/acks`, or one `acks` frame, may carry. */
export const MAX_ACKS_PER_REQUEST = 500;
/** Deepest nesting of arrays and objects a notification payload may have. */
export const MAX_PAYLOAD_DEPTH = 32;
