import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { AppModule } from './app.module';
import { UpgradeAuthService } from './auth/upgrade-auth.service';
import type { PublisherRequest } from './auth/api-key.guard';
import { answerClientError } from './common/client-error';
import { adminOriginCheck } from './admin/admin-origin';
import { isEndUserPath, endUserCors } from './gateway/end-user-cors';
import { HeraldWsAdapter } from './gateway/herald-ws-adapter';
import { BODY_REFUSED, installJsonBody } from './common/json-body';
import { compileProxyTrust } from './common/client-address';
import { createLogger, enableLevelsFrom, enterRequestContext, type LogStreams } from './common/logging';
import { HttpErrorFilter, toErrorResponse } from './common/http-error.filter';
import { requestIdFrom } from './common/request-id';
import { RequestLog } from './common/request-log';
import { MetricsService } from './metrics/metrics.service';
import { buildOpenApiDocument, serveOpenApi } from './openapi/openapi';
import type { HeraldConfig } from './config/config.schema';

/** Node's own limit on receiving a whole request, which Fastify turns off unless told: 5 minutes. */
const REQUEST_TIMEOUT_MS = 300_000;

/**
 * The Herald application for a parsed config, everything but listening: Nest on Fastify (one HTTP pipeline
 * for every route, ADR 0022), the JSON body parser, the request hook, the error filter, the WebSocket
 * adapter and OpenAPI. `main.ts` adds the process (signals, exit codes); the in-process tests
 * (test/helpers/in-process.ts) run the same app in Jest, logging to their files (`logTo`).
 */
export async function createApp(config: HeraldConfig, logTo?: LogStreams): Promise<NestFastifyApplication> {
  // request.ip follows X-Forwarded-For only when the peer is a configured proxy.
  const proxyTrust = compileProxyTrust(config.trustedProxies);
  // Set once the app exists: what every request gets first, its headers and its log line (`begin` below).
  let begin: (request: FastifyRequest, reply: FastifyReply) => void = () => undefined;
  const adapter = new FastifyAdapter({
    trustProxy: proxyTrust,
    bodyLimit: config.maxBodyBytes,
    genReqId: (request: IncomingMessage) => requestIdFrom(request),
    requestIdHeader: false,
    logger: false,
    requestTimeout: REQUEST_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    // The router refuses a malformed URL (400) or an over-long parameter (414) before any hook runs.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      begin(request, reply);
      const { status, body } = toErrorResponse(error, request.id);
      void reply.code(status).send(body);
    },
    // Routes match as they always have: a trailing slash and the letters' case do not matter.
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false },
    // No Nest middleware anywhere: the request hook below does that work, without middie's hook per request.
    skipMiddie: true,
    // While the replica drains, requests still reach the routes, which answer with the error body and
    // Retry-After (health: draining; an upgrade: 503), not Fastify's bare 503 once its close has begun.
    return503OnClosing: false,
  });
  enableLevelsFrom(config);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    // Every line through nestjs-pino (common/logging.ts), from the first.
    logger: createLogger(config, true, logTo),
    bodyParser: false,
    abortOnError: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  installJsonBody(fastify, config.maxBodyBytes);

  const requestLog = new RequestLog(new Logger('Http'), app.get(MetricsService), proxyTrust);
  const cors = endUserCors(app.get(UpgradeAuthService));
  const adminOrigin = adminOriginCheck(config.allowedOrigins);
  // The headers go on the Node response, so every answer carries them, event streams included.
  begin = (request, reply) => {
    reply.raw.setHeader('X-Request-Id', request.id);
    // Which replica answered: behind a balancer, this is how an operator (and a test) tells.
    reply.raw.setHeader('X-Herald-Replica', config.replicaId);
    requestLog.track(request.raw, reply.raw, () => ({
      route: routeOf(request),
      requestId: request.id,
      publisher: (request as PublisherRequest).publisher?.keyId,
    }));
  };
  // Before routing, for every request, matched or not.
  fastify.addHook('onRequest', (request, reply, done) => {
    enterRequestContext(request.id);
    begin(request, reply);
    const path = pathOf(request);
    if (isEndUserPath(path) && cors(request.raw, reply.raw) === 'preflight') {
      void reply.code(204).send();
      return;
    }
    try {
      if (path.startsWith('/admin/api')) adminOrigin(request.raw);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
  app.useGlobalFilters(new HttpErrorFilter());
  // Frames are parsed by the gateway itself, which answers bad ones: Nest's per-message pipeline is not bound.
  // Every upgrade request it does not take gets an HTTP answer with the JSON error body.
  app.useWebSocketAdapter(new HeraldWsAdapter(app, config.replicaId));
  serveOpenApi(app, buildOpenApiDocument(app));
  return app;
}

/** The path, lower case and without a trailing slash, as the router matches it. */
function pathOf(request: FastifyRequest): string {
  const path = request.url.split('?', 1)[0]!.toLowerCase();
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * The matched route's pattern (`/v1/notifications/:id`), so labels and logs never carry ids; `(body)`
 * when the body was refused before the route ran (bad JSON, too large); else `unmatched`.
 */
function routeOf(request: FastifyRequest): string {
  if ((request.raw as IncomingMessage & { [BODY_REFUSED]?: boolean })[BODY_REFUSED]) return '(body)';
  return request.routeOptions.url ?? 'unmatched';
}
