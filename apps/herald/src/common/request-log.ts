import { Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { PublisherRequest } from '../auth/api-key.guard';
import type { MetricsService } from '../metrics/metrics.service';
import { clientAddress, ProxyTrust } from './client-address';
import { requestIdOf } from './request-id';

/**
 * One log line per REST request when it is answered: method, route pattern,
 * status, duration, request id and the publisher's key id (never the key,
 * never the query string). Also counts herald_http_requests_total. Shared by
 * the Express middleware and the publish route's fast lane (publish-edge.ts).
 */
export class RequestLog {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: MetricsService,
    private readonly trust: ProxyTrust,
  ) {}

  /**
   * Records the request when its response closes (`close` comes for every request, answered or not;
   * `finish` only for answered ones). `describe` is read then: the route and publisher are known late.
   */
  track(
    request: IncomingMessage,
    response: ServerResponse,
    describe: () => { route: string; requestId: string; publisher: string | undefined },
  ): void {
    const started = process.hrtime.bigint();
    response.once('close', () => {
      const { route, requestId, publisher } = describe();
      const method = request.method ?? 'UNKNOWN';
      this.metrics.httpRequests.inc({ method, route, status: String(response.statusCode) });
      if (route === '/metrics' || !Logger.isLevelEnabled('log')) return; // scrapes would drown the log
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      this.logger.log({
        message: 'request',
        method,
        route,
        status: response.statusCode,
        durationMs: Math.round(durationMs * 10) / 10,
        requestId,
        publisher,
        remoteAddress: clientAddress(request, this.trust),
        ...(response.writableFinished ? {} : { aborted: true }),
      });
    });
  }

  /** The Express middleware: every request but those the publish fast lane answers. */
  middleware() {
    return (request: Request, response: Response, next: NextFunction): void => {
      this.track(request, response, () => ({
        route: routeOf(request, response),
        requestId: requestIdOf(request),
        publisher: (request as PublisherRequest).publisher?.keyId,
      }));
      next();
    };
  }
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
