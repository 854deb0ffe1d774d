import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { DrainState } from './common/lifecycle.module';
import { ConfigError, HeraldConfig, loadConfig } from './config/config.schema';
import { createApp } from './create-app';
import { UpgradeFenceError } from './database/upgrade-fence';

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
  const app = await createApp(config);
  // No HOST: every address, IPv6 and IPv4 ('::' takes both), or IPv4's where the kernel has no IPv6.
  const listen = (host: string) => app.listen({ port: config.port, host, backlog: config.listenBacklog });
  if (config.host) await listen(config.host);
  else {
    await listen('::').catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EAFNOSUPPORT') throw error;
      return listen('0.0.0.0');
    });
  }
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
  // EX_TEMPFAIL: a replica of the previous version still runs; start again once it is stopped.
  process.exit(error instanceof UpgradeFenceError ? 75 : 1);
});
