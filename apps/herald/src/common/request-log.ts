import type { Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { PublisherRequest } from '../auth/api-key.guard';
import type { MetricsService } from '../metrics/metrics.service';
import { requestIdOf } from './request-id';

/**
 * One log line per REST request when it is answered: method, route pattern,
 * status, duration, request id and the publisher's key id (never the key,
 * never the query string). Also counts herald_http_requests_total.
 */
export function requestLogMiddleware(logger: Logger, metrics: MetricsService) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    // `close` comes for every request, answered or not (`finish` only for answered ones).
    response.on('close', () => {
      const route = routeOf(request, response);
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.httpRequests.inc({ method: request.method, route, status: String(response.statusCode) });
      if (route === '/metrics') return; // scrapes every few seconds would drown the log
      logger.log({
        message: 'request',
        method: request.method,
        route,
        status: response.statusCode,
        durationMs: Math.round(durationMs * 10) / 10,
        requestId: requestIdOf(request),
        publisher: (request as PublisherRequest).publisher?.keyId,
        remoteAddress: request.ip,
        ...(response.writableFinished ? {} : { aborted: true }),
      });
    });
    next();
  };
}

/**
 * The matched route's pattern (`/v1/notifications/:id`), so labels and logs never carry ids; `(body)`
 * when the body was refused before routing (bad JSON, too large); else `unmatched`.
 */
function routeOf(request: Request, response: Response): string {
  const path = (request.route as { path?: unknown } | undefined)?.path;
  if (typeof path === 'string') return `${request.baseUrl}${path}`;
  return response.locals.bodyRefused === true ? '(body)' : 'unmatched';
}
