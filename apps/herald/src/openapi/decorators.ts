import { applyDecorators } from '@nestjs/common';
import { ApiQuery, ApiResponse, type HeadersObject } from '@nestjs/swagger';
import { DEFAULT_INBOX_PAGE, ErrorCode, MAX_INBOX_PAGE } from '@herald/protocol';
import { Realm } from '../common/bearer';
import { schemaRef } from './components';

export { schemaRef };

/** An error response: the one error body, with an example of this status. */
export function errorExample(code: ErrorCode, message: string, details?: { field: string; reason: string }[]) {
  return { error: { code, message, ...(details ? { details } : {}), requestId: 'trace-123' } };
}

const ERROR_BODY = schemaRef('ApiErrorBody');

/** The challenge every 401 carries (RFC 6750 §3), in the realm of the credential it asks for. */
function challengeHeader(realm: Realm, invalidToken: boolean): HeadersObject {
  return {
    'WWW-Authenticate': {
      description: invalidToken
        ? `\`Bearer realm="${realm}"\`, with \`, error="invalid_token"\` when a credential was sent and is wrong.`
        : `\`Bearer realm="${realm}"\`.`,
      schema: { type: 'string' },
      example: `Bearer realm="${realm}"${invalidToken ? ', error="invalid_token"' : ''}`,
    },
  };
}

const ERRORS: Record<
  number,
  { description: string; example: ReturnType<typeof errorExample>; headers?: HeadersObject }
> = {
  400: {
    description: 'A field is missing or malformed; `details` names each one.',
    example: errorExample(ErrorCode.BadRequest, 'event: required', [{ field: 'event', reason: 'required' }]),
  },
  401: {
    description: 'No API key, or an unknown one.',
    example: errorExample(ErrorCode.Unauthorized, 'unknown API key'),
    headers: challengeHeader(Realm.Herald, true),
  },
  404: {
    description: 'No such notification for this publisher.',
    example: errorExample(ErrorCode.NotFound, 'notification not found'),
  },
  429: {
    description:
      'Too many at once: wrong admin passwords from this address, or tickets minted for this user (or the console) ' +
      'this minute. `Retry-After` says when to try again.',
    example: errorExample(ErrorCode.RateLimited, 'too many wrong passwords from this address; try again in 42 s'),
  },
  413: {
    description: 'The body or the payload is larger than allowed.',
    example: errorExample(ErrorCode.PayloadTooLarge, 'payload exceeds 65536 bytes'),
  },
  422: {
    description: 'The Idempotency-Key was used before with a different body.',
    example: errorExample(ErrorCode.IdempotencyConflict, 'Idempotency-Key reused with a different request'),
  },
  426: {
    description:
      'A plain request, or a handshake for another protocol or WebSocket version: `Upgrade: websocket`, ' +
      '`Sec-WebSocket-Version: 13`.',
    example: errorExample(
      ErrorCode.UpgradeRequired,
      'this endpoint speaks WebSocket only: send a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)',
    ),
    headers: {
      Upgrade: { schema: { type: 'string', enum: ['websocket'] } },
      'Sec-WebSocket-Version': { schema: { type: 'string', enum: ['13'] } },
    },
  },
  503: {
    description: 'A store did not answer; nothing was stored. Retry (with the same Idempotency-Key). `Retry-After: 1`.',
    example: errorExample(
      ErrorCode.Unavailable,
      'the notification store is unavailable; nothing was stored, retry later',
    ),
  },
};

/** The error responses an endpoint can give, each with the one error body and an example. */
export function ApiErrors(...statuses: (keyof typeof ERRORS)[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: ERRORS[status]!.description,
        schema: ERROR_BODY,
        example: ERRORS[status]!.example,
        ...(ERRORS[status]!.headers ? { headers: ERRORS[status]!.headers } : {}),
      }),
    ),
  );
}

/** The admin login's 401: a wrong password, challenged in the login's own realm with no error (RFC 6750 §3). */
export function ApiWrongPassword(): MethodDecorator & ClassDecorator {
  return ApiResponse({
    status: 401,
    description: 'Wrong password.',
    schema: ERROR_BODY,
    example: errorExample(ErrorCode.Unauthorized, 'wrong password'),
    headers: challengeHeader(Realm.AdminLogin, false),
  });
}

/** A publish over its API key's budgets (ADR 0005): 429 with `Retry-After` and the RateLimit fields. */
export function ApiPublisherLimited(): MethodDecorator & ClassDecorator {
  return ApiResponse({
    status: 429,
    description:
      "Over the API key's notifications per second (with burst) or recipients per minute; nothing was stored. " +
      'Retry after `Retry-After` seconds.',
    schema: ERROR_BODY,
    example: errorExample(
      ErrorCode.RateLimited,
      'publisher pk_3f2a9c0d1e4b is over its rate of 100 notifications per second (burst 200); nothing was stored, retry in 1 s',
    ),
    headers: {
      'Retry-After': { description: 'Whole seconds until the publish would fit.', schema: { type: 'integer' } },
      'RateLimit-Policy': {
        description: 'Both budgets, as in draft-ietf-httpapi-ratelimit-headers-10: `q` units per `w` seconds.',
        schema: { type: 'string' },
        example: '"notifications";q=200;w=2, "recipients";q=1000000;w=60',
      },
      RateLimit: {
        description: 'The budget that refused: `r` units left, `t` seconds until the publish fits.',
        schema: { type: 'string' },
        example: '"notifications";r=0;t=1',
      },
    },
  });
}

/** The errors every end-user endpoint can give: the same checks as the WebSocket upgrade. */
export function ApiUserErrors(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiResponse({
      status: 401,
      description: 'No user token, or a forged, expired or not-yet-valid one (API keys are not user tokens).',
      schema: ERROR_BODY,
      example: errorExample(ErrorCode.Unauthorized, 'token expired'),
      headers: challengeHeader(Realm.Herald, true),
    }),
    ApiResponse({
      status: 403,
      description: 'The Origin is not in HERALD_ALLOWED_ORIGINS.',
      schema: ERROR_BODY,
      example: errorExample(ErrorCode.Forbidden, 'Origin not allowed'),
    }),
  );
}

/** The errors every admin endpoint behind the login can give. */
export function ApiAdminErrors(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiResponse({
      status: 401,
      description: 'No admin session, or an expired or forged one (API keys and user tokens are not admin sessions).',
      schema: ERROR_BODY,
      example: errorExample(ErrorCode.Unauthorized, 'not an admin session, or it expired: log in again'),
      headers: challengeHeader(Realm.Herald, true),
    }),
    ApiResponse({
      status: 503,
      description:
        'The admin API is off (HERALD_ADMIN_PASSWORD is empty), or a store did not answer. `Retry-After: 1`.',
      schema: ERROR_BODY,
      example: errorExample(ErrorCode.Unavailable, 'the admin API is off: set HERALD_ADMIN_PASSWORD to turn it on'),
    }),
  );
}

/** The query of `GET /v1/me/notifications` (and the admin API's view of a user's inbox), documented. */
export function ApiInboxQuery(): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'limit',
      required: false,
      schema: { type: 'integer', minimum: 1, maximum: MAX_INBOX_PAGE, default: DEFAULT_INBOX_PAGE },
    }),
    ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' }),
    ApiQuery({
      name: 'unread',
      required: false,
      schema: { type: 'boolean' },
      description: 'true: unread only; false: read only',
    }),
    ApiQuery({
      name: 'archived',
      required: false,
      schema: { type: 'boolean', default: false },
      description: 'true: archived only',
    }),
    ApiQuery({ name: 'event', required: false, description: 'Only items of this event' }),
  );
}
