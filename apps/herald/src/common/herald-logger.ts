import { ConsoleLogger, ConsoleLoggerOptions } from '@nestjs/common';
import type { HeraldConfig } from '../config/config.schema';

/**
 * Nest's JSON console logger, with the replica id on every line and object
 * messages (`logger.log({ message, notificationId, ... })`) flattened into
 * top-level fields, so each line is one flat, greppable JSON object.
 */
export class HeraldLogger extends ConsoleLogger {
  constructor(
    private readonly replicaId: string,
    options: ConsoleLoggerOptions,
  ) {
    super(options);
  }

  protected override getJsonLogObject(
    message: unknown,
    options: Parameters<ConsoleLogger['getJsonLogObject']>[1],
  ): ReturnType<ConsoleLogger['getJsonLogObject']> {
    const base = super.getJsonLogObject(message, options);
    base.replica = this.replicaId;
    if (typeof message === 'object' && message !== null && !Array.isArray(message)) {
      const fields = message as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields)) if (!(key in base) || key === 'message') base[key] = value;
      if (!('message' in fields)) base.message = '';
    }
    return base;
  }
}

const LEVELS = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'] as const;

/** The service's logger for a parsed config: the replica id on every line, JSON or text, from `LOG_LEVEL` up. */
export function createLogger(config: HeraldConfig): HeraldLogger {
  return new HeraldLogger(config.replicaId, {
    json: config.logFormat === 'json',
    colors: false,
    prefix: 'herald',
    logLevels: LEVELS.slice(LEVELS.indexOf(config.logLevel)),
  });
}
