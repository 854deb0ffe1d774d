import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ApiErrorBody, ErrorCode } from '@herald/protocol';
import type { Request, Response } from 'express';
import { errorHeaders } from './error-headers';
import { HeraldError, HTTP_STATUS } from './errors';
import { requestIdOf } from './request-id';

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
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const { status, body, headers } = errorReply(
      error,
      requestIdOf(request),
      this.logger,
      request.method,
      request.path,
    );
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    response.status(status).json(body);
  }
}

/**
 * The answer to a failed request, for the filter and for the publish fast lane alike: the error body,
 * its status and headers (`errorHeaders`); a 5xx is logged (the client sees no internals).
 */
export function errorReply(
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
    return {
      status,
      body: { error: { code: BY_STATUS[status] ?? ErrorCode.Internal, message: error.message, requestId } },
    };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message: 'internal error', requestId } } };
}
