import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { schemaComponents } from './components';

export const OPENAPI_JSON_PATH = 'v1/openapi.json';
export const OPENAPI_UI_PATH = 'v1/docs';

/**
 * The OpenAPI 3 document of the REST API: paths, operations, tags and security schemes from the controllers'
 * decorators (@nestjs/swagger); the body schemas they reference by `$ref` from the zod schemas of
 * `@herald/protocol` (zod-openapi). Deterministic: no host, no dates.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Herald REST API')
    .setDescription(
      'Publish notifications, read their delivery state, mint user tokens, stream to end users over ' +
        'Server-Sent Events where WebSockets are blocked, and check health. ' +
        'Real-time delivery itself is the WebSocket protocol at `/ws` (docs/protocol.md). ' +
        'Every error has the same body; every response carries `X-Request-Id` and `X-Herald-Replica`.',
    )
    .setVersion('1')
    .addServer('/')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'opaque API key',
        description: 'A publisher API key (one of HERALD_API_KEYS).',
      },
      'apiKey',
    )
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'A user token from POST /v1/tokens, for the WebSocket at /ws and the end-user endpoints (`?token=` or this header).',
      },
      'userToken',
    )
    .addTag('publish', 'Publishing and delivery state, for your services (API key).')
    .addTag('tokens', 'User tokens for the WebSocket, minted by your services (API key).')
    .addTag(
      'end users',
      'The WebSocket at /ws (its handshake answers), its Server-Sent Events fallback and acks (user token).',
    )
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'An admin session from POST /admin/api/login (not an API key, not a user token).',
      },
      'adminSession',
    )
    .addTag(
      'webhooks',
      'Delivery webhooks: endpoints told what became of your notifications (API key; docs/webhooks.md).',
    )
    .addTag('admin', 'The admin console’s API: live connections, broadcasts, history, statistics (admin session).')
    .addTag('demo', 'Tokens for the demo page: no authentication, off unless HERALD_DEMO_TOKENS=true.')
    .addTag('health', 'Liveness and readiness, no authentication.')
    .build();
  const document = SwaggerModule.createDocument(app, config, { autoTagControllers: false });
  const schemas = schemaComponents();
  const unknown = Object.keys(document.components?.schemas ?? {}).filter((id) => !(id in schemas));
  if (unknown.length > 0) throw new Error(`schemas not from @herald/protocol: ${unknown.join(', ')}`);
  document.components = {
    ...document.components,
    schemas: schemas as NonNullable<OpenAPIObject['components']>['schemas'],
  };
  return document;
}

/** Serves the document at /v1/openapi.json and a browsable page at /v1/docs. */
export function serveOpenApi(app: INestApplication, document: OpenAPIObject): void {
  SwaggerModule.setup(OPENAPI_UI_PATH, app, document, {
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'Herald REST API',
  });
}
