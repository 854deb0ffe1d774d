import { Global, Logger as NestLogger, Module, type LogLevel } from '@nestjs/common';
import { CLS_ID, ClsService, ClsServiceManager, type ClsStore } from 'nestjs-cls';
import { Logger, PinoLogger, type Params } from 'nestjs-pino';
import pino from 'pino';
import pinoPretty from 'pino-pretty';
import type { HeraldConfig } from '../config/config.schema';

/** What the request context (nestjs-cls) holds for the logs; its id is the request id. */
export interface HeraldClsStore extends ClsStore {
  /** The publisher's key id (`pk_…`), once `ApiKeyGuard` has found it. */
  publisher?: string;
  /** A connection's own work (its setup, its close): ConnectionService. */
  connectionId?: string;
  userId?: string;
}

/**
 * nestjs-cls's `ClsService`, injectable everywhere, without `ClsModule.forRoot`'s global guard and
 * interceptor: its interceptor, a no-op unless mounted, still runs every request through Nest's rxjs
 * interceptor pipeline (docs/performance.md, section 19). The request hook enters the context instead
 * (`enterRequestContext`, create-app.ts).
 */
@Global()
@Module({
  providers: [{ provide: ClsService, useFactory: () => ClsServiceManager.getClsService<HeraldClsStore>() }],
  exports: [ClsService],
})
export class RequestContextModule {}

/**
 * Opens a request's context, before its body is read: what runs for the request from here (its guards,
 * pipes, handler and the work they start) sees the request id as the context's id.
 */
export function enterRequestContext(requestId: string): void {
  ClsServiceManager.getClsService<HeraldClsStore>().enterWith({ [CLS_ID]: requestId });
}

const LEVELS: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];
const PINO_LEVEL: Record<LogLevel, pino.Level> = {
  verbose: 'trace',
  debug: 'debug',
  log: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
};
/** Pino's level names as Nest's, which the logs have always used (`log`, not `info`). */
const NEST_LEVEL: Record<string, LogLevel> = Object.fromEntries(
  Object.entries(PINO_LEVEL).map(([nest, level]) => [level, nest as LogLevel]),
);

/** The request context every line carries: the request id, the publisher, the connection. */
function contextOf(cls: ClsService<HeraldClsStore>): Record<string, string | undefined> {
  if (!cls.isActive()) return {};
  return {
    requestId: cls.getId(),
    publisher: cls.get('publisher'),
    connectionId: cls.get('connectionId'),
    userId: cls.get('userId'),
  };
}

/**
 * nestjs-pino's settings for a config: one JSON object per line with `level` (Nest's names), `pid`,
 * `timestamp` (ms since the epoch), `replica`, `message`, `context`, the request context from nestjs-cls
 * and the line's own fields at the top level; `error` and `fatal` on stderr, the rest on stdout.
 * `LOG_FORMAT=text` prints the same through pino-pretty, without colours. No route gets pino-http's
 * middleware (`forRoutes: []`): the request line is written by the request hook (create-app.ts), which
 * also counts it.
 */
export function loggerParams(
  config: HeraldConfig,
  cls?: ClsService<HeraldClsStore>,
  { out, err }: LogStreams = stdStreams(),
): Params {
  const options: pino.LoggerOptions = {
    level: PINO_LEVEL[config.logLevel],
    messageKey: 'message',
    base: { pid: process.pid, replica: config.replicaId },
    timestamp: () => `,"timestamp":${Date.now()}`,
    formatters: { level: (label) => ({ level: NEST_LEVEL[label] ?? label }) },
    ...(cls ? { mixin: () => contextOf(cls) } : {}),
  };
  const stream =
    config.logFormat === 'json'
      ? pino.multistream(
          [
            { level: 'trace', stream: out },
            { level: 'error', stream: err },
          ],
          { dedupe: true },
        )
      : pinoPretty({ colorize: false, sync: true, messageKey: 'message', ignore: 'pid', destination: out });
  return { pinoHttp: [options, stream], forRoutes: [] };
}

/** Where the log lines go: `out` below `error`, `err` from it. */
export interface LogStreams {
  out: pino.DestinationStream;
  err: pino.DestinationStream;
}

/** stdout and stderr, written synchronously to their file descriptors (a line is out before a crash). */
function stdStreams(): LogStreams {
  return { out: pino.destination({ dest: 1, sync: true }), err: pino.destination({ dest: 2, sync: true }) };
}

/** Tells Nest which levels are on, so `Logger.isLevelEnabled` skips the lines pino would drop. */
export function enableLevelsFrom(config: HeraldConfig): void {
  NestLogger.overrideLogger(LEVELS.slice(LEVELS.indexOf(config.logLevel)));
}

/**
 * nestjs-pino's logger for a config, made before the application so that what Nest logs while it starts
 * (the upgrade fence's waits, a failed start) is written at once. With the request context for the app;
 * without it for `npm run migrate`. `streams`: where to write, stdout and stderr unless given (the
 * in-process tests give their log files).
 */
export function createLogger(config: HeraldConfig, withContext = true, streams?: LogStreams): Logger {
  const params = loggerParams(
    config,
    withContext ? ClsServiceManager.getClsService<HeraldClsStore>() : undefined,
    streams,
  );
  return new Logger(new PinoLogger(params), params);
}
