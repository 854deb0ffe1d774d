import Ajv from 'ajv';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { repoRoot } from '../helpers/paths';

interface Operation {
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, { schema?: unknown; examples?: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

/**
 * Validates with @apidevtools/swagger-parser in a plain Node process: it is ESM inside, which Jest's
 * module loader cannot take on Node 20, while Node itself can.
 */
function validateOpenApi(document: unknown): { ok: boolean; output: string } {
  const script =
    "require('@apidevtools/swagger-parser').validate(JSON.parse(require('fs').readFileSync(0, 'utf8')))" +
    ".then((api) => console.log('valid', api.openapi), (error) => { console.error(error.message); process.exit(1); })";
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: repoRoot(),
    input: JSON.stringify(document),
    encoding: 'utf8',
  });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

/** Routes the app's router registered, as Nest logs them at start: `Mapped {/v1/notifications/:id, GET} route`. */
function registeredRoutes(herald: InProcessHerald): string[] {
  return [...herald.log().matchAll(/"Mapped \{([^,]+), (\w+)\} route"/g)].map((m) => `${m[2]} ${m[1]}`);
}

describe('OpenAPI description of the REST API', () => {
  let herald: InProcessHerald;
  let served: Document;

  beforeAll(async () => {
    // At `log` level, for the routes Nest maps at start; to the app's log file only.
    herald = await InProcessHerald.start('openapi', { LOG_LEVEL: 'log' }, { quiet: true });
    const response = await fetch(`${herald.http}/v1/openapi.json`);
    expect(response.status).toBe(200);
    served = (await response.json()) as Document;
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('is served at /v1/openapi.json exactly as committed in docs/openapi.json (npm run docs:openapi)', () => {
    const committed = JSON.parse(readFileSync(join(repoRoot(), 'docs', 'openapi.json'), 'utf8')) as Document;
    expect(served).toEqual(committed);
  });

  it('validates as OpenAPI 3', () => {
    expect(served.openapi).toMatch(/^3\./);
    expect(validateOpenApi(served)).toEqual({ ok: true, output: `valid ${served.openapi}` });
    // The validator does reject a broken document.
    const broken = { ...served, paths: { '/x': { get: { responses: 'none' } } } };
    expect(validateOpenApi(broken).ok).toBe(false);
  });

  it('describes every route the app registers, and nothing else (/metrics is internal)', () => {
    const routes = registeredRoutes(herald);
    expect(routes.length).toBeGreaterThan(3);
    const expected = routes
      .filter((r) => r !== 'GET /metrics')
      .map((r) => r.replace(/:(\w+)/g, '{$1}'))
      .sort();
    const documented = Object.entries(served.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(expected);
  });

  it('documents auth, bodies with examples, and the error body on every endpoint that needs a credential', () => {
    // End users hold user tokens; the demo token endpoint takes none (and is off unless enabled).
    const userEndpoints = ['GET /v1/stream', 'POST /v1/stream/pong', 'POST /v1/acks', 'POST /v1/tickets'];
    for (const [path, operations] of Object.entries(served.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        const admin = path.startsWith('/admin/api/') && path !== '/admin/api/login';
        if ((path.startsWith('/v1/') && !path.startsWith('/v1/demo/')) || admin) {
          const user = userEndpoints.includes(where) || path.startsWith('/v1/me/');
          const scheme = admin ? 'adminSession' : user ? 'userToken' : 'apiKey';
          expect({ where, security: operation.security }).toEqual({ where, security: [{ [scheme]: [] }] });
          expect({
            where,
            unauthorized: operation.responses['401']?.content?.['application/json']?.schema?.$ref,
          }).toEqual({ where, unauthorized: '#/components/schemas/ApiErrorBody' });
        }
        if (operation.requestBody) {
          const json = operation.requestBody.content['application/json'];
          expect({ where, examples: Object.keys(json?.examples ?? {}).length > 0 }).toEqual({ where, examples: true });
        }
      }
    }
    expect(Object.keys(served.paths['/v1/notifications']!.post!.responses).sort()).toEqual(
      ['202', '400', '401', '413', '422', '429', '503'].sort(),
    );
  });

  it('describes what the service really answers: each body matches the schema documented for its status', async () => {
    // The served document as one schema, so its #/components references resolve; `nullable` is OpenAPI 3.0's.
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    ajv.addSchema(served, 'openapi');
    const check = async (method: string, path: string, documented: string, init: Parameters<typeof request>[3]) => {
      const answer = await request<unknown>(herald.http, method, path, init);
      const operation = served.paths[documented]![method.toLowerCase()]!;
      const schema = operation.responses[String(answer.status)]?.content?.['application/json']?.schema;
      expect({ where: `${method} ${documented} ${answer.status}`, documented: schema !== undefined }).toEqual({
        where: `${method} ${documented} ${answer.status}`,
        documented: true,
      });
      const ref = JSON.stringify(schema).replace(/"#\/components/g, '"openapi#/components');
      const validate = ajv.compile(JSON.parse(ref) as object);
      const valid = validate(answer.body);
      expect({ where: `${method} ${documented} ${answer.status}`, errors: valid ? null : validate.errors }).toEqual({
        where: `${method} ${documented} ${answer.status}`,
        errors: null,
      });
      return answer;
    };

    // A payload that is an array, a user list audience, no topic: the nullable and any-JSON parts.
    const created = await check('POST', '/v1/notifications', '/v1/notifications', {
      body: { to: { users: ['schema-user'] }, event: 'schema.check', payload: [1, 'two', null] },
    });
    expect(created.status).toBe(202);
    const id = (created.body as { id: string }).id;
    await check('GET', `/v1/notifications/${id}`, '/v1/notifications/{id}', {});
    await check('POST', '/v1/notifications', '/v1/notifications', {
      body: { to: { topic: 'schema-topic' }, event: 'schema.topic', payload: 'just a string' },
    });
    const withNull = await check('POST', '/v1/notifications', '/v1/notifications', {
      body: { to: { users: ['schema-user'] }, event: 'schema.null', payload: null },
    });
    const nullId = (withNull.body as { id: string }).id;
    const stored = await check('GET', `/v1/notifications/${nullId}`, '/v1/notifications/{id}', {});
    expect((stored.body as { payload: unknown }).payload).toBeNull();
    await check('POST', '/v1/tokens', '/v1/tokens', { body: { userId: 'schema-user', ttlSeconds: 60 } });
    // Errors: the one error body, with details for 400.
    await check('POST', '/v1/notifications', '/v1/notifications', { body: { to: { users: [] }, event: '' } });
    await check('POST', '/v1/notifications', '/v1/notifications', {
      body: { event: 'x' },
      apiKey: 'not-a-key-0000000000',
    });
    await check('GET', '/v1/notifications/00000000-0000-4000-8000-000000000000', '/v1/notifications/{id}', {});
    await check('GET', '/health/live', '/health/live', { apiKey: null });
    await check('GET', '/health/ready', '/health/ready', { apiKey: null });
  });

  it('has a browsable page at /v1/docs', async () => {
    const page = await fetch(`${herald.http}/v1/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
  });
});
