import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsAdapter } from '@nestjs/platform-ws';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { UpgradeAuthService } from './auth/upgrade-auth.service';
import { answerClientErrors } from './common/client-error';
import { adminOriginCheck } from './admin/admin-origin';
import { END_USER_PATHS, endUserCors } from './gateway/end-user-cors';
import { PayloadTooLargeError, BadRequestError } from './common/errors';
import { compileProxyTrust } from './common/client-address';
import { DrainState } from './common/lifecycle.module';
import { HeraldLogger } from './common/herald-logger';
import { HttpErrorFilter, toErrorResponse } from './common/http-error.filter';
import { requestIdMiddleware, requestIdOf } from './common/request-id';
import { requestLogMiddleware } from './common/request-log';
import { MetricsService } from './metrics/metrics.service';
import { buildOpenApiDocument, serveOpenApi } from './openapi/openapi';
import { ConfigError, HeraldConfig, loadConfig } from './config/config.schema';

/**
 * The `ws` adapter without Nest's message routing: HeraldGateway reads every frame from the socket itself
 * (it has no @SubscribeMessage handlers), so the rxjs pipeline Nest builds per message would be pure cost.
 */
class HeraldWsAdapter extends WsAdapter {
  override bindMessageHandlers(): void {
    // Deliberately empty: see HeraldGateway.handleConnection.
  }

  override bindClientDisconnect(): void {
    // Deliberately empty: the gateway's own shared `close` listener ends the connection. Nest's adds a
    // `once` wrapper and a closure to every socket, kept for its lifetime.
  }

  override bindErrorHandler<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(server: T): T {
    // Server errors only: socket errors go to the gateway's shared `error` listener (Nest's adds one
    // closure per socket).
    server.on('error', (error: Error) => this.logger.error(error));
    return server;
  }
}

const LEVELS = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'] as const;

function createLogger(config: HeraldConfig): HeraldLogger {
  return new HeraldLogger(config.replicaId, {
    json: config.logFormat === 'json',
    colors: false,
    prefix: 'herald',
    logLevels: LEVELS.slice(LEVELS.indexOf(config.logLevel)),
  });
}

/** Body-parser errors happen before Nest's filters: answer them in the same error shape. */
function bodyErrorHandler(maxBodyBytes: number) {
  return (error: unknown, request: Request, response: Response, next: NextFunction): void => {
    if (!error) return next();
    const type = (error as { type?: string }).type;
    const mapped =
      type === 'entity.too.large'
        ? new PayloadTooLargeError(`request body exceeds ${maxBodyBytes} bytes`)
        : type === 'entity.parse.failed'
          ? new BadRequestError('request body is not valid JSON', [{ field: '(body)', reason: 'not valid JSON' }])
          : new BadRequestError('request body could not be read', [
              { field: '(body)', reason: String(type ?? 'unreadable') },
            ]);
    const { status, body } = toErrorResponse(mapped, requestIdOf(request));
    response.locals.bodyRefused = true; // for the request log: refused before any route matched
    response.status(status).json(body);
  };
}

async function bootstrap(): Promise<void> {
  let config: HeraldConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`herald: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  answerClientErrors(app.getHttpServer());
  // req.ip and req.protocol follow X-Forwarded-* only when the peer is a configured proxy.
  app.set('trust proxy', compileProxyTrust(config.trustedProxies));
  app.use(requestIdMiddleware);
  app.use(requestLogMiddleware(new Logger('Http'), app.get(MetricsService)));
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
  app.useWebSocketAdapter(new HeraldWsAdapter(app));
  serveOpenApi(app, buildOpenApiDocument(app));
  if (config.host) await app.listen(config.port, config.host);
  else await app.listen(config.port);
  const log = new Logger('Main');
  log.log({ message: 'herald listening', host: config.host || '*', port: config.port, replicaId: config.replicaId });

  // Graceful shutdown: clients closed 1001, in-flight acks written, workers stopped, then exit 0.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    app.get(DrainState).begin();
    log.log({ message: 'shutting down', signal, replicaId: config.replicaId });
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ message: 'shutdown failed', error: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`herald: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
