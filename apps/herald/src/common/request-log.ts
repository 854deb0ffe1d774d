import { Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsService } from '../metrics/metrics.service';
import { clientAddress, ProxyTrust } from './client-address';

/**
 * One log line per REST request when it is answered: method, route pattern,
 * status, duration, request id and the publisher's key id (never the key,
 * never the query string). Also counts herald_http_requests_total.
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
}
