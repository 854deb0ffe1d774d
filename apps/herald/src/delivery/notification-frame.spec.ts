import { toNotificationFrame, toReplayedFrame } from './notification-frame';
import { frameText } from '../connections/transport';

describe('toReplayedFrame', () => {
  const base = {
    id: '0b5f3c1e-8a7d-4f7e-9a51-3c2b1d0e9f8a',
    seq: 42,
    event: 'order "shipped" — ünïcode \u2028',
    payload: { a: [1, 2, { b: 'x"y' }], n: null },
    createdAt: '2026-11-26T09:00:00.123Z',
  };
  // As PostgreSQL prints jsonb: spaced, but the same JSON.
  const payloadText = '{"a": [1, 2, {"b": "x\\"y"}], "n": null}';

  it.each([
    ['without a topic', null],
    ['with a topic', 'orders/"eu"'],
  ])('builds text equal as JSON to the serialised frame, %s', (_name, topic) => {
    const notification = { ...base, topic };
    const frame = toReplayedFrame({ notification, attempt: 3, payloadText, streamed: false });
    const expected = toNotificationFrame(notification, 3);
    expect(frame).toEqual(expected); // the text is not an enumerable property
    const text = frameText(frame);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(expected)));
    // Key order as in a live frame's JSON.
    expect(Object.keys(JSON.parse(text) as object)).toEqual(Object.keys(expected));
  });

  it('is what the transports send: frameText returns the built text, not a new serialisation', () => {
    const frame = toReplayedFrame({ notification: { ...base, topic: null }, attempt: 1, payloadText, streamed: false });
    expect(frameText(frame)).toContain(payloadText);
    expect(JSON.stringify(frame)).not.toContain(payloadText); // the text lives on the frame unseen
  });
});
