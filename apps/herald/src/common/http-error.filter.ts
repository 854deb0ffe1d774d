import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ApiErrorBody, ErrorCode } from '@herald/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorHeaders } from './error-headers';
import { HeraldError, HTTP_STATUS } from './errors';
import { noJsonBody } from './json-body';

const BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  413: ErrorCode.PayloadTooLarge,
  422: ErrorCode.IdempotencyConflict,
  426: ErrorCode.UpgradeRequired,
  429: ErrorCode.RateLimited,
  503: ErrorCode.Unavailable,
};

/** Maps every error to the one REST error body; unexpected ones become 500 without leaking internals. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const { status, body, headers } = errorReply(
      error,
      request.id,
      this.logger,
      request.method,
      request.routeOptions.url ?? request.url.split('?', 1)[0]!,
    );
    if (reply.sent || reply.raw.headersSent) {
      // A stream already under way (SSE): no error body can follow its headers.
      reply.raw.end();
      return;
    }
    reply.headers(headers).status(status).send(body);
  }
}

/**
 * The answer to a failed request: the error body, its status and headers (`errorHeaders`); a 5xx is logged
 * (the client sees no internals).
 */
function errorReply(
  error: unknown,
  requestId: string,
  logger: Logger,
  method: string | undefined,
  path: string,
): { status: number; body: ApiErrorBody; headers: Record<string, string> } {
  const { status, body } = toErrorResponse(error, requestId);
  if (status >= 500) {
    logger.error({
      message: 'request failed',
      method,
      path,
      status,
      requestId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
  return { status, body, headers: errorHeaders(error, status) };
}

export function toErrorResponse(error: unknown, requestId: string): { status: number; body: ApiErrorBody } {
  if (error instanceof HeraldError) {
    const body: ApiErrorBody = { error: { code: error.code, message: error.message, requestId } };
    if (error.details) body.error.details = error.details;
    return { status: HTTP_STATUS[error.code], body };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    // Fastify's answer to a body with an empty Content-Type (the JSON parser takes any other type).
    if (status === 415) return toErrorResponse(noJsonBody(), requestId);
    return {
      status,
      body: { error: { code: BY_STATUS[status] ?? ErrorCode.Internal, message: error.message, requestId } },
    };
  }
  const status = fastifyStatusOf(error);
  if (status !== undefined) {
    // Fastify's own refusals before any route (a malformed URL, an over-long parameter): 4xx, with its message.
    return {
      status,
      body: {
        error: { code: BY_STATUS[status] ?? ErrorCode.BadRequest, message: (error as Error).message, requestId },
      },
    };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message: 'internal error', requestId } } };
}

/** The 4xx status of an error Fastify raised (its codes start `FST_`); undefined for anything else. */
function fastifyStatusOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  if (typeof code !== 'string' || !code.startsWith('FST_') || typeof statusCode !== 'number') return undefined;
  return statusCode >= 400 && statusCode < 500 ? statusCode : undefined;
}
