import { ClientAckFrameSchema, ClientAcksFrameSchema } from '@herald/protocol';
import { parseClientFrame } from './frame-parser';

describe('parseClientFrame', () => {
  it('parses each client command', () => {
    const id = '0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11';
    expect(parseClientFrame(JSON.stringify({ type: 'ack', id: id.toUpperCase() }))).toEqual({
      ok: true,
      frame: { type: 'ack', id },
    });
    expect(parseClientFrame('{"type":"ping"}')).toEqual({ ok: true, frame: { type: 'ping' } });
    expect(parseClientFrame('{"type":"ping","id":"p1"}')).toEqual({ ok: true, frame: { type: 'ping', id: 'p1' } });
    expect(parseClientFrame('{"type":"subscribe","channel":"news.eu","id":"s"}')).toEqual({
      ok: true,
      frame: { type: 'subscribe', channel: 'news.eu', id: 's' },
    });
    expect(parseClientFrame('{"type":"unsubscribe","channel":"news"}')).toEqual({
      ok: true,
      frame: { type: 'unsubscribe', channel: 'news' },
    });
  });

  it('parses many acks in one frame, and refuses an empty, oversized or malformed list whole', () => {
    const id = '0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11';
    expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: [id.toUpperCase(), 'not-a-uuid'] }))).toEqual({
      ok: true,
      frame: { type: 'acks', ids: [id, 'not-a-uuid'] },
    });
    expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: Array(500).fill(id) }))).toMatchObject({ ok: true });
    for (const ids of [undefined, [], Array(501).fill(id), [id, 7], [''], ['x'.repeat(65)], id]) {
      const result = parseClientFrame(JSON.stringify({ type: 'acks', ids }));
      expect(result).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
      expect(result.ok ? '' : result.message).toContain('1-500');
    }
  });

  it('parses a token refresh and refuses one without a usable token', () => {
    expect(parseClientFrame('{"type":"auth","token":"a.b.c","id":"r1"}')).toEqual({
      ok: true,
      frame: { type: 'auth', token: 'a.b.c', id: 'r1' },
    });
    for (const token of [undefined, '', 42, 'x'.repeat(4097)]) {
      expect(parseClientFrame(JSON.stringify({ type: 'auth', token, id: 'r2' }))).toMatchObject({
        ok: false,
        code: 'BAD_REQUEST',
        id: 'r2',
      });
    }
  });

  it('answers text that is not a JSON object with BAD_REQUEST', () => {
    for (const text of ['', 'hello', '[1]', '42', 'null', '"s"']) {
      expect(parseClientFrame(text)).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    }
  });

  it('echoes a valid command id in errors, and only a valid one', () => {
    const missing = parseClientFrame('{"type":"subscribe","id":"c9"}');
    expect(missing).toMatchObject({ ok: false, code: 'BAD_REQUEST', id: 'c9' });
    expect(missing.ok ? '' : missing.message).toContain('channel');
    const bad = parseClientFrame(JSON.stringify({ type: 'ping', id: 'x'.repeat(65) }));
    expect(bad).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(bad).not.toHaveProperty('id');
  });

  it('answers an unknown type with UNKNOWN_TYPE', () => {
    expect(parseClientFrame('{"type":"launch","id":"l1"}')).toMatchObject({
      ok: false,
      code: 'UNKNOWN_TYPE',
      id: 'l1',
    });
  });

  it('requires the notification id on ack and a string type', () => {
    expect(parseClientFrame('{"type":"ack"}')).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(parseClientFrame('{"type":7}')).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
  });

  it('parses "quiet" on an ack and on acks, and refuses a "quiet" that is not a boolean', () => {
    const id = '0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11';
    expect(parseClientFrame(JSON.stringify({ type: 'ack', id, quiet: true }))).toEqual({
      ok: true,
      frame: { type: 'ack', id, quiet: true },
    });
    expect(parseClientFrame(JSON.stringify({ type: 'ack', id, through: true, quiet: true }))).toEqual({
      ok: true,
      frame: { type: 'ack', id, through: true, quiet: true },
    });
    expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: [id.toUpperCase()], quiet: true }))).toEqual({
      ok: true,
      frame: { type: 'acks', ids: [id], quiet: true },
    });
    expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: [id], quiet: false }))).toEqual({
      ok: true,
      frame: { type: 'acks', ids: [id] },
    });
    for (const quiet of ['yes', 1, null, {}]) {
      expect(parseClientFrame(JSON.stringify({ type: 'ack', id, quiet }))).toEqual({
        ok: false,
        code: 'BAD_REQUEST',
        message: '"quiet" must be true or false',
        id,
      });
      expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: [id], quiet }))).toEqual({
        ok: false,
        code: 'BAD_REQUEST',
        message: '"quiet" must be true or false',
      });
    }
  });

  it('parses an ack with "through", and refuses a "through" that is not a boolean or sits in "acks"', () => {
    const id = '0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11';
    expect(parseClientFrame(JSON.stringify({ type: 'ack', id: id.toUpperCase(), through: true }))).toEqual({
      ok: true,
      frame: { type: 'ack', id, through: true },
    });
    expect(parseClientFrame(JSON.stringify({ type: 'ack', id, through: false }))).toEqual({
      ok: true,
      frame: { type: 'ack', id },
    });
    for (const through of ['yes', 1, null, {}]) {
      expect(parseClientFrame(JSON.stringify({ type: 'ack', id, through }))).toEqual({
        ok: false,
        code: 'BAD_REQUEST',
        message: '"through" must be true or false',
        id,
      });
    }
    expect(parseClientFrame(JSON.stringify({ type: 'acks', ids: [id], through: true }))).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: '"through" is not allowed in "acks": send {"type":"ack","id":…,"through":true} on its own',
    });
  });
});

describe('parseClientFrame on "ack" and "acks" (read by hand, the hot path)', () => {
  const id = '0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11';
  const flags = [undefined, true, false, 'yes', 1, null, {}];
  const corpus: Record<string, unknown>[] = [];
  for (const ackId of [undefined, 'c1', 7, '', 'x'.repeat(65), id.toUpperCase(), 'not-a-uuid', 'a b']) {
    for (const through of flags) for (const quiet of flags) corpus.push({ type: 'ack', id: ackId, through, quiet });
  }
  const lists = [
    undefined,
    [],
    [id.toUpperCase(), 'x'],
    Array(500).fill(id),
    Array(501).fill(id),
    [id, 7],
    [''],
    ['x'.repeat(65)],
    id,
    null,
    {},
  ];
  for (const ids of lists) {
    for (const through of [undefined, true, false])
      for (const quiet of flags) corpus.push({ type: 'acks', ids, through, quiet });
  }
  corpus.push({ type: 'acks', ids: [id], id: 'c2' }, { type: 'ack', id, extra: { nested: true } });

  it('decides as ClientAckFrameSchema and ClientAcksFrameSchema do, with the same frame or the same message', () => {
    expect(corpus.length).toBeGreaterThan(500);
    for (const frame of corpus) {
      const text = JSON.stringify(frame);
      const byHand = parseClientFrame(text);
      const schema = frame.type === 'ack' ? ClientAckFrameSchema : ClientAcksFrameSchema;
      const bySchema = schema.safeParse(JSON.parse(text));
      const expected = bySchema.success
        ? { ok: true, frame: bySchema.data }
        : { ok: false, message: bySchema.error.issues[0]!.message };
      const got = byHand.ok ? byHand : { ok: false, message: byHand.message };
      expect({ text, result: got }).toEqual({ text, result: expected });
    }
  });
});
