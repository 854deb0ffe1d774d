import { ErrorCode } from '@herald/protocol';
import { BearerChallenge } from './bearer';

/** A domain error: what went wrong, in the protocol's stable codes. Mapped to HTTP once, in HttpErrorFilter. */
export class HeraldError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: { field: string; reason: string }[],
  ) {
    super(message);
    this.name = 'HeraldError';
  }
}

export class BadRequestError extends HeraldError {
  constructor(message: string, details?: { field: string; reason: string }[]) {
    super(ErrorCode.BadRequest, message, details);
  }
}

/** A 401: `challenge` becomes its `WWW-Authenticate` header (RFC 6750 §3). */
export class UnauthorizedError extends HeraldError {
  constructor(
    message: string,
    readonly challenge: BearerChallenge,
  ) {
    super(ErrorCode.Unauthorized, message);
  }
}

/** The `RateLimit-Policy` and `RateLimit` fields of a refusal (draft-ietf-httpapi-ratelimit-headers-10). */
export interface RateLimitFields {
  policy: string;
  current: string;
}

export class RateLimitedError extends HeraldError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    readonly fields?: RateLimitFields,
  ) {
    super(ErrorCode.RateLimited, message);
  }
}

export class ForbiddenError extends HeraldError {
  constructor(message: string) {
    super(ErrorCode.Forbidden, message);
  }
}

export class NotFoundError extends HeraldError {
  constructor(message: string) {
    super(ErrorCode.NotFound, message);
  }
}

/** A plain HTTP request where only a WebSocket upgrade is answered (RFC 6455 §4.2.2): 426 with `Upgrade: websocket`. */
export class UpgradeRequiredError extends HeraldError {
  constructor(
    message = 'this endpoint speaks WebSocket only: send a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)',
  ) {
    super(ErrorCode.UpgradeRequired, message);
  }
}

export class PayloadTooLargeError extends HeraldError {
  constructor(message: string) {
    super(ErrorCode.PayloadTooLarge, message);
  }
}

export class IdempotencyConflictError extends HeraldError {
  constructor() {
    super(ErrorCode.IdempotencyConflict, 'this Idempotency-Key was already used with a different request body');
  }
}

/** The store could not make the request durable; nothing was written. */
export class UnavailableError extends HeraldError {
  constructor(
    message: string,
    /** `Retry-After`: 1 s unless the server knows better (a shed stream: HandshakeAdmission). */
    readonly retryAfterSeconds = 1,
  ) {
    super(ErrorCode.Unavailable, message);
  }
}

export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNKNOWN_TYPE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  IDEMPOTENCY_CONFLICT: 422,
  UPGRADE_REQUIRED: 426,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

/**
 * Runs `work` on a store: a refusal it throws (a HeraldError) passes as it is, any other failure is logged
 * and answered 503 with `message` (nothing was changed, or the change is safe to send again).
 */
export async function storedOr503<T>(
  logger: { warn(entry: object): void },
  what: string,
  message: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof HeraldError) throw error;
    logger.warn({ message: `${what} failed`, error: (error as Error).message });
    throw new UnavailableError(message);
  }
}
