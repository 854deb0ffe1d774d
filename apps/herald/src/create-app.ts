import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { UpgradeAuthService } from './auth/upgrade-auth.service';
import { answerClientErrors } from './common/client-error';
import { adminOriginCheck } from './admin/admin-origin';
import { END_USER_PATHS, endUserCors } from './gateway/end-user-cors';
import { HeraldWsAdapter } from './gateway/herald-ws-adapter';
import { bodyErrorHandler } from './common/json-body';
import { compileProxyTrust } from './common/client-address';
import { createLogger, HeraldLogger } from './common/herald-logger';
import { HttpErrorFilter } from './common/http-error.filter';
import { requestIdMiddleware } from './common/request-id';
import { RequestLog } from './common/request-log';
import { ApiKeyService } from './auth/api-key.service';
import { PublishService } from './publish/publish.service';
import { installPublishEdge } from './publish/publish-edge';
import { MetricsService } from './metrics/metrics.service';
import { buildOpenApiDocument, serveOpenApi } from './openapi/openapi';
import type { HeraldConfig } from './config/config.schema';

/**
 * The Herald application for a parsed config, everything but listening: middleware, the error filter,
 * the WebSocket adapter, OpenAPI and the publish fast lane. `main.ts` adds the process (signals, exit
 * codes); the in-process tests (test/helpers/in-process.ts) run the same app in Jest.
 */
export async function createApp(
  config: HeraldConfig,
  logger: HeraldLogger = createLogger(config),
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  answerClientErrors(app.getHttpServer());
  // req.ip and req.protocol follow X-Forwarded-* only when the peer is a configured proxy.
  const proxyTrust = compileProxyTrust(config.trustedProxies);
  app.set('trust proxy', proxyTrust);
  app.use(requestIdMiddleware);
  const requestLog = new RequestLog(new Logger('Http'), app.get(MetricsService), proxyTrust);
  app.use(requestLog.middleware());
  // Which replica answered: behind a balancer, this is how an operator (and a test) tells.
  app.use((_request: Request, response: Response, next: NextFunction) => {
    response.setHeader('X-Herald-Replica', config.replicaId);
    next();
  });
  app.use(END_USER_PATHS, endUserCors(app.get(UpgradeAuthService)));
  app.use('/admin/api', adminOriginCheck(config.allowedOrigins));
  app.use(express.json({ limit: config.maxBodyBytes, type: ['application/json', 'application/*+json'] }));
  app.use(bodyErrorHandler(config.maxBodyBytes));
  app.useGlobalFilters(new HttpErrorFilter());
  // Frames are parsed by the gateway itself, which answers bad ones: Nest's per-message pipeline is not bound.
  // Every upgrade request it does not take gets an HTTP answer with the JSON error body.
  app.useWebSocketAdapter(new HeraldWsAdapter(app, config.replicaId));
  serveOpenApi(app, buildOpenApiDocument(app));
  // POST /v1/notifications in its common shape is answered ahead of Express (see publish-edge.ts).
  installPublishEdge(app.getHttpServer(), {
    publish: app.get(PublishService),
    keys: app.get(ApiKeyService),
    log: requestLog,
    replicaId: config.replicaId,
    maxBodyBytes: config.maxBodyBytes,
  });
  return app;
}
