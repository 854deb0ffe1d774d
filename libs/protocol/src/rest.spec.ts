import { publishRequestSchema } from './publish';
import { AcksRequestSchema, tokenRequestSchema } from './rest';
import { reportProblems, type ReportOptions } from './problems';
import type { z } from 'zod';

const limits = { maxRecipients: 3, maxPayloadBytes: 64, maxTtlSeconds: 100, defaultTtlSeconds: 50 };
const publish = publishRequestSchema(limits);

/** The parsed value, or the error the server answers with. */
function parse(schema: z.ZodType, body: unknown, options?: ReportOptions) {
  const result = schema.safeParse(body);
  return result.success ? { ok: result.data } : reportProblems(result.error.issues, body, options);
}

describe('publishRequestSchema', () => {
  it('applies defaults and removes duplicate users, sorted', () => {
    expect(parse(publish, { to: { users: ['b', 'a', 'b'] }, event: 'e' })).toEqual({
      ok: { to: { users: ['a', 'b'] }, event: 'e', payload: {}, ttlSeconds: 50 },
    });
  });

  it('accepts topic and everyone audiences', () => {
    expect(parse(publish, { to: { topic: 'news' }, event: 'e', ttlSeconds: 100 })).toMatchObject({
      ok: { to: { topic: 'news' } },
    });
    expect(parse(publish, { to: { all: true }, event: 'e', payload: null })).toMatchObject({
      ok: { to: { all: true }, payload: null },
    });
  });

  it('reports every problem with its field and reason, unknown fields first', () => {
    expect(parse(publish, { to: { users: ['a', 'b', 'c', 'd'] }, event: 'bad event', ttlSeconds: 101, x: 1 })).toEqual({
      code: 'BAD_REQUEST',
      message:
        'x: unknown field; to.users: must list at most 3 users; event: required: 1-128 characters of letters, ' +
        'digits and _ . : -; ttlSeconds: must be a whole number from 1 to 100',
      details: [
        { field: 'x', reason: 'unknown field' },
        { field: 'to.users', reason: 'must list at most 3 users' },
        { field: 'event', reason: 'required: 1-128 characters of letters, digits and _ . : -' },
        { field: 'ttlSeconds', reason: 'must be a whole number from 1 to 100' },
      ],
    });
  });

  it('names the audience problem by the key the audience has', () => {
    const reasonOf = (to: unknown) => (parse(publish, { to, event: 'e' }) as { details: unknown }).details;
    expect(reasonOf(undefined)).toEqual([
      { field: 'to', reason: 'required: { "users": [...] } or { "topic": "..." } or { "all": true }' },
    ]);
    expect(reasonOf({ users: ['a'], topic: 't' })).toEqual([
      { field: 'to', reason: 'must have exactly one of "users", "topic", "all"' },
    ]);
    expect(reasonOf({ users: [], x: 1 })).toEqual([
      { field: 'to.x', reason: 'unknown field' },
      { field: 'to.users', reason: 'must be a non-empty array of user ids' },
    ]);
    // Only the first bad id is named.
    expect(reasonOf({ users: ['a', 'bad user', 7] })).toEqual([
      { field: 'to.users[1]', reason: 'must be 1-128 characters of letters, digits and _ . @ : -' },
    ]);
    expect(reasonOf({ all: 'yes' })).toEqual([{ field: 'to.all', reason: 'must be true' }]);
  });

  it('says when there is no body, or it is not an object', () => {
    expect(parse(publish, undefined)).toEqual({
      code: 'BAD_REQUEST',
      message: 'no JSON body: send one with Content-Type: application/json',
      details: [{ field: '(body)', reason: 'missing, or not sent as application/json' }],
    });
    expect(parse(publish, [1])).toEqual({
      code: 'BAD_REQUEST',
      message: 'body must be a JSON object',
      details: [{ field: '(body)', reason: 'must be a JSON object' }],
    });
  });

  it('refuses a payload over the limit alone, as PAYLOAD_TOO_LARGE', () => {
    expect(parse(publish, { to: { all: true }, event: 'e', payload: { s: 'x'.repeat(64) } })).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'payload is 72 bytes; the limit is 64',
    });
    // Counted in UTF-8 bytes, as stored: 64 fit, 66 do not.
    expect(parse(publish, { to: { all: true }, event: 'e', payload: { s: 'é'.repeat(28) } })).toHaveProperty('ok');
    expect(parse(publish, { to: { all: true }, event: 'e', payload: { s: 'é'.repeat(29) } })).toMatchObject({
      message: 'payload is 66 bytes; the limit is 64',
    });
  });

  const roomy = publishRequestSchema({ ...limits, maxPayloadBytes: 100_000 });

  it('refuses what PostgreSQL jsonb cannot store, with 400 on the payload field', () => {
    for (const payload of [{ s: 'a\u0000b' }, { s: '\ud800' }, { ['k\u0000']: 1 }, ['\udc00x']]) {
      expect(parse(roomy, { to: { all: true }, event: 'e', payload })).toEqual({
        code: 'BAD_REQUEST',
        message: 'payload contains a NUL character or an unpaired surrogate',
        details: [{ field: 'payload', reason: 'strings must not contain U+0000 or unpaired UTF-16 surrogates' }],
      });
    }
    for (const payload of [{ s: '😀' }, { s: '\\u0000 is how you write it' }]) {
      expect(parse(roomy, { to: { all: true }, event: 'e', payload })).toMatchObject({ ok: { payload } });
    }
  });

  it('refuses deep nesting without overflowing the stack, and only once the fields are right', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(parse(roomy, { to: { all: true }, event: 'e', payload: deep })).toEqual({
      code: 'BAD_REQUEST',
      message: 'payload nests deeper than 32 levels',
      details: [{ field: 'payload', reason: 'must nest at most 32 levels deep' }],
    });
    expect(parse(roomy, { to: { all: true }, event: 'e', payload: deep, x: 1 })).toMatchObject({
      details: [{ field: 'x', reason: 'unknown field' }],
    });
    let ok: unknown = 1;
    for (let i = 0; i < 31; i++) ok = { a: ok };
    expect(parse(roomy, { to: { all: true }, event: 'e', payload: ok })).toHaveProperty('ok');
  });
});

describe('AcksRequestSchema', () => {
  it('checks the list before its ids, and names every bad id', () => {
    expect(parse(AcksRequestSchema, { ids: [], x: 1 })).toMatchObject({
      details: [
        { field: 'x', reason: 'unknown field' },
        { field: 'ids', reason: 'required: an array of 1-500 notification ids' },
      ],
    });
    expect(parse(AcksRequestSchema, { ids: Array(501).fill(7) })).toMatchObject({
      details: [{ field: 'ids', reason: 'required: an array of 1-500 notification ids' }],
    });
    expect(parse(AcksRequestSchema, { ids: ['a', '', 7] })).toMatchObject({
      details: [
        { field: 'ids[1]', reason: 'must be a notification id (a string of 1-64 characters)' },
        { field: 'ids[2]', reason: 'must be a notification id (a string of 1-64 characters)' },
      ],
    });
    expect(parse(AcksRequestSchema, 'x')).toMatchObject({
      message: 'body must be a JSON object',
      details: [{ field: '(body)', reason: 'must be an object' }],
    });
  });
});

describe('tokenRequestSchema', () => {
  it('defaults the TTL to an hour within the limit, and reads a body that is not an object as {}', () => {
    expect(parse(tokenRequestSchema(600), { userId: 'alice' })).toEqual({ ok: { userId: 'alice', ttlSeconds: 600 } });
    expect(parse(tokenRequestSchema(7200), { userId: 'alice' })).toEqual({ ok: { userId: 'alice', ttlSeconds: 3600 } });
    expect(parse(tokenRequestSchema(60), 'x', { unknownFieldsFirst: false })).toMatchObject({
      details: [{ field: 'userId', reason: 'required: 1-128 characters of letters, digits and _ . @ : -' }],
    });
    expect(
      parse(tokenRequestSchema(60), { userId: 'a', ttlSeconds: 61, x: 1 }, { unknownFieldsFirst: false }),
    ).toMatchObject({
      message: 'ttlSeconds: must be a whole number from 1 to 60; x: unknown field',
    });
  });
});
