import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppModule } from '../app.module';
import { parseConfig } from '../config/config.schema';
import { buildOpenApiDocument } from './openapi';

/**
 * `npm run docs:openapi`: writes docs/openapi.json, the same document a
 * replica serves at /v1/openapi.json. Preview mode builds the module graph
 * without creating providers, so no database or Redis is needed.
 */
async function main(): Promise<void> {
  const config = parseConfig({
    HERALD_API_KEYS: 'openapi-generation-only-0000',
    HERALD_JWT_SECRET: 'openapi-generation-only-0000000000000000',
    REPLICA_ID: 'openapi',
  });
  // On Fastify, as the app runs (ADR 0022): without an adapter Nest looks for Express, which Herald does not have.
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), {
    preview: true,
    logger: false,
  });
  const document = buildOpenApiDocument(app);
  const target = join(__dirname, '..', '..', '..', '..', 'docs', 'openapi.json');
  writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
  process.stdout.write(`wrote ${target} (${Object.keys(document.paths).length} paths)\n`);
  await app.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`openapi: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
