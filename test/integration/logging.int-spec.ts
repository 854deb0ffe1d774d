/** The log settings (common/logging.ts) on their own: in this tier because nestjs-cls loads @nestjs/common, ESM only. */
import { Writable } from 'node:stream';
import { ClsServiceManager } from 'nestjs-cls';
import pino from 'pino';
import { parseConfig } from '../../apps/herald/src/config/config.schema';
import { HeraldClsStore, loggerParams } from '../../apps/herald/src/common/logging';

const ENV = {
  DATABASE_URL: 'postgres://localhost/herald',
  REDIS_URL: 'redis://localhost:6379',
  HERALD_API_KEYS: 'logging-spec-key-0123456789',
  HERALD_JWT_SECRET: '0123456789abcdef0123456789abcdef',
  REPLICA_ID: 'herald-7',
};

function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { stream, lines };
}

/** A pino logger from the service's settings, writing to the two sinks. */
function loggerFor(env: Record<string, string>, out: Writable, err: Writable) {
  const cls = ClsServiceManager.getClsService<HeraldClsStore>();
  const { pinoHttp } = loggerParams(parseConfig({ ...ENV, ...env }), cls, { out, err });
  const [options, stream] = pinoHttp as [pino.LoggerOptions, pino.DestinationStream];
  return { logger: pino(options, stream), cls };
}

describe('logging', () => {
  it('writes one flat JSON line per call, with Nest level names, the replica and the request context', () => {
    const out = sink();
    const err = sink();
    const { logger, cls } = loggerFor({}, out.stream, err.stream);
    logger.info({ context: 'Http', message: 'request', status: 202 });
    cls.run(() => {
      cls.set('publisher', 'pk_0123456789ab');
      cls.set('connectionId', 'c-1');
      logger.warn({ context: 'Gateway', message: 'socket error', connectionId: 'given' });
    });
    logger.error({ context: 'Http', message: 'request failed' });
    logger.debug({ message: 'below the level' });

    const lines = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'log',
      replica: 'herald-7',
      context: 'Http',
      message: 'request',
      status: 202,
    });
    expect(typeof lines[0]!.timestamp).toBe('number');
    expect(lines[0]!.pid).toBe(process.pid);
    expect(lines[0]).not.toHaveProperty('requestId');
    // The line's own field wins over the context's.
    expect(lines[1]).toMatchObject({ level: 'warn', publisher: 'pk_0123456789ab', connectionId: 'given' });
    // Errors on stderr only.
    expect(err.lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'error', message: 'request failed' }),
    ]);
  });

  it('prints plain text lines with LOG_FORMAT=text, and debug lines with LOG_LEVEL=debug', () => {
    const out = sink();
    const { logger } = loggerFor({ LOG_FORMAT: 'text', LOG_LEVEL: 'debug' }, out.stream, sink().stream);
    logger.debug({ context: 'DeliveryService', message: 'delivery sent', attempt: 1 });
    expect(out.lines.join('\n')).toMatch(/DEBUG.*delivery sent/);
    expect(() => JSON.parse(out.lines[0]!) as unknown).toThrow();
  });
});
