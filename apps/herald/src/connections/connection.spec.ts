import type { NotificationFrame, ServerFrame } from '@herald/protocol';
import {
  Connection,
  ConnectionLimits,
  INITIAL_ACK_ALLOWANCE,
  LATE_LIVE_MS,
  SLOW_CONSUMER_GRACE_MS,
} from './connection';
import type { ClientTransport } from './transport';

class FakeTransport implements ClientTransport {
  readonly kind = 'websocket';
  readonly answersPings = true;
  isOpen = true;
  bufferedAmount = 0;
  terminated = 0;
  readonly sent: ServerFrame[] = [];
  /** Bytes each send adds to the buffer (a peer that reads nothing). */
  constructor(private readonly bytesPerSend = 0) {}
  send(frame: ServerFrame): void {
    this.sent.push(frame);
    this.bufferedAmount += this.bytesPerSend;
  }
  ping(): void {}
  close(): void {
    this.isOpen = false;
  }
  terminate(): void {
    this.terminated += 1;
    this.isOpen = false;
  }
}

const LIMITS: ConnectionLimits = {
  maxBufferedBytes: 100_000,
  framesPerSecond: 10,
  framesBurst: 20,
  ackThroughWindow: 100,
};

function connectionOn(transport: FakeTransport, limits = LIMITS): Connection {
  const info = { id: 'c1', userId: 'u1', connectedAt: Date.now(), remoteAddress: '', userAgent: '', tokenExpiresAt: 0 };
  return new Connection(info, transport, limits);
}

function notification(n: number): NotificationFrame {
  return {
    type: 'notification',
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    seq: n,
    event: 'e',
    payload: {},
    timestamp: new Date(0).toISOString(),
    attempt: 1,
  };
}

/** The seq of each frame sent, -1 for a frame that is not a notification. */
function sentSeqs(transport: FakeTransport): number[] {
  return transport.sent.map((f) => (f.type === 'notification' ? f.seq : -1));
}

/** A connection past its connect replay, asked to hold live frames for a catch-up, with 2 held before its read. */
function heldBeforeCatchUpRead(): { transport: FakeTransport; connection: Connection } {
  const transport = new FakeTransport();
  const connection = connectionOn(transport);
  connection.finishReplay();
  expect(connection.holdLive()).toBe(true);
  connection.deliver(notification(2));
  connection.replayReading();
  return { transport, connection };
}

describe('Connection limits', () => {
  it('admits a burst, then refuses with "limited", then closes a client that keeps going', () => {
    const connection = connectionOn(new FakeTransport());
    const now = 1_000_000;
    const answers = Array.from({ length: 60 }, () => connection.admit(0, now));
    expect(answers.slice(0, 20).every((a) => a === 'ok')).toBe(true);
    expect(answers.slice(20, 40).every((a) => a === 'limited')).toBe(true);
    // More refusals than the burst, net of the rate: the client is not slowing down.
    expect(answers[40]).toBe('close');
  });

  it('refills at the configured rate, and forgives refusals at the same rate', () => {
    const connection = connectionOn(new FakeTransport());
    let now = 2_000_000;
    for (let i = 0; i < 20; i++) expect(connection.admit(0, now)).toBe('ok');
    for (let i = 0; i < 15; i++) expect(connection.admit(0, now)).toBe('limited');
    now += 1000; // ten tokens back, ten refusals forgiven
    for (let i = 0; i < 10; i++) expect(connection.admit(0, now)).toBe('ok');
    expect(connection.admit(0, now)).toBe('limited');
    // A client at the allowed rate is never closed: one frame per 100 ms for a minute.
    for (let i = 0; i < 600; i++) {
      now += 100;
      expect(connection.admit(0, now)).not.toBe('close');
    }
  });

  it('never limits acks of notifications sent on the connection (a replay burst) nor the acks queued before it, but does limit other acks', () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    for (let n = 1; n <= 500; n++) connection.send(notification(n));
    const now = 3_000_000;
    for (let n = 1; n <= 500 + INITIAL_ACK_ALLOWANCE; n++) expect(connection.admit(1, now)).toBe('ok');
    // The credit is spent: acks beyond what was sent cost tokens like any other frame.
    const extra = Array.from({ length: 25 }, () => connection.admit(1, now));
    expect(extra.filter((a) => a === 'ok')).toHaveLength(20);
    expect(extra.slice(20).every((a) => a === 'limited')).toBe(true);
  });

  it('admits a frame of many acks against the same credit, and charges each ack beyond it as a frame', () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    for (let n = 1; n <= 500; n++) connection.send(notification(n));
    const now = 5_000_000;
    // 500 sent plus the allowance: three frames of 500 acks use it all, whatever the frame burst.
    for (let n = 1; n <= (500 + INITIAL_ACK_ALLOWANCE) / 500; n++) expect(connection.admit(500, now)).toBe('ok');
    // Beyond it, each ack costs a token: a frame of 15 fits the burst of 20, a second one does not.
    expect(connection.admit(15, now)).toBe('ok');
    expect(connection.admit(15, now)).toBe('limited');
    expect(connection.admit(5, now)).toBe('ok');
    expect(connection.admit(0, now)).toBe('limited');
  });

  it('cuts off a peer whose send buffer stays over the cap for the grace, once, and sends nothing after', () => {
    const transport = new FakeTransport(30_000);
    const connection = connectionOn(transport);
    const t0 = 4_000_000;
    for (let n = 1; n <= 4; n++) connection.send(notification(n), t0); // 120 000 buffered > 100 000
    expect(transport.terminated).toBe(0);
    connection.send(notification(5), t0 + SLOW_CONSUMER_GRACE_MS - 1);
    expect(connection.cutOff).toBeUndefined();
    connection.send(notification(6), t0 + SLOW_CONSUMER_GRACE_MS);
    expect(transport.terminated).toBe(1);
    expect(connection.cutOff).toBe('slow-consumer');
    connection.send(notification(7), t0 + SLOW_CONSUMER_GRACE_MS + 1);
    expect(transport.sent).toHaveLength(6);
    expect(transport.terminated).toBe(1);
  });

  it('lets a reader that catches up take a burst over the cap, and cuts off at four times the cap at once', () => {
    const transport = new FakeTransport(60_000);
    const connection = connectionOn(transport);
    const t0 = 5_000_000;
    connection.send(notification(1), t0);
    connection.send(notification(2), t0); // 120 000: over the cap, the grace starts
    transport.bufferedAmount = 0; // the reader caught up
    connection.send(notification(3), t0 + 900);
    connection.send(notification(4), t0 + 1900); // over again, a new grace: not 1900 ms over
    expect(transport.terminated).toBe(0);
    for (let n = 5; n <= 8; n++) connection.send(notification(n), t0 + 1900); // 360 000
    expect(transport.terminated).toBe(0);
    connection.send(notification(9), t0 + 1900); // 420 000 > 4 × 100 000
    expect(connection.cutOff).toBe('slow-consumer');
  });
});

describe('Connection replay pacing by acks', () => {
  const sendReplayed = (connection: Connection, n: number) => {
    for (let seq = 1; seq <= n; seq++) connection.sendReplayed(notification(seq));
  };
  const settled = (promise: Promise<void>) => {
    let done = false;
    void promise.then(() => (done = true));
    return () => done;
  };
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('waits until enough replayed notifications are acked, counting the acks of any frame', async () => {
    const connection = connectionOn(new FakeTransport());
    sendReplayed(connection, 5);
    const done = settled(connection.ackedDownTo(2, 10_000));
    connection.acked(1);
    await tick();
    expect(done()).toBe(false);
    connection.acked(2); // an acks frame of two
    await tick();
    expect(done()).toBe(true);
  });

  it('stops waiting for a client that sends no ack, and for a closed socket', async () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    sendReplayed(connection, 5);
    const started = Date.now();
    await connection.ackedDownTo(0, 30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    transport.isOpen = false;
    await connection.ackedDownTo(0, 10_000);
  });

  it('counts nothing once the replay is over', async () => {
    const connection = connectionOn(new FakeTransport());
    sendReplayed(connection, 3);
    connection.finishReplay();
    connection.acked(3);
    await connection.ackedDownTo(0, 10_000);
  });
});

describe('Connection catch-up hold (BusCatchUp)', () => {
  it('holds live frames again, replays in seq order skipping what it has unacked, then sends the rest of the held', async () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    connection.finishReplay();
    connection.deliver(notification(1));
    connection.deliver(notification(2));
    connection.settled(notification(1).id);
    expect(connection.holdLive()).toBe(true);
    const done = connection.afterReplay();
    connection.deliver(notification(5));
    connection.deliver(notification(4));
    // The replay reads 2 (sent here, unacked: skipped), 3, 4; 5 came live after its read.
    connection.sendReplayed(notification(2));
    connection.sendReplayed(notification(3));
    connection.sendReplayed(notification(4));
    connection.finishReplay();
    await done;
    expect(sentSeqs(transport)).toEqual([1, 2, 3, 4, 5]);
    expect(connection.replaySkipped).toBe(1);
  });

  it('leaves out a frame held before its read that the replay, reading to the end, found no longer open', () => {
    // The stream catch-up sent 2 here; the user acked it on another connection before the replay's read.
    const { transport, connection } = heldBeforeCatchUpRead();
    connection.deliver(notification(4));
    connection.sendReplayed(notification(3));
    connection.finishReplay(true);
    expect(sentSeqs(transport)).toEqual([3, 4]);
  });

  it('sends every held frame it did not replay when its read failed', () => {
    const { transport, connection } = heldBeforeCatchUpRead();
    connection.finishReplay(false);
    expect(sentSeqs(transport)).toEqual([2]);
  });

  it('asked during a running replay, keeps the live frames held past its end until the catch-up replay is done', async () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    // The connect replay is running (read the record before the bus came back): a catch-up is asked for.
    expect(connection.holdLive()).toBe(false);
    connection.sendReplayed(notification(1));
    // Live after the return; 2 and 3 the bus missed and the connect replay read too early to see.
    connection.deliver(notification(4));
    connection.finishReplay();
    await connection.afterReplay();
    expect(sentSeqs(transport)).toEqual([1]);
    expect(connection.holdLive()).toBe(true);
    connection.deliver(notification(5));
    connection.sendReplayed(notification(2));
    connection.sendReplayed(notification(3));
    connection.finishReplay();
    expect(sentSeqs(transport)).toEqual([1, 2, 3, 4, 5]);
    // Live again.
    connection.deliver(notification(6));
    expect(transport.sent.length).toBe(6);
  });
});

describe('Connection: a live first send that comes after the replay sent it', () => {
  const recent = (n: number, attempt = 1, createdAt = Date.now()): NotificationFrame => ({
    ...notification(n),
    timestamp: new Date(createdAt).toISOString(),
    attempt,
  });

  it('is not sent again; a resend of it, and a notification the replay did not send, are', () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    // The replay read 1 and 2 once committed; their bus messages come after it ended.
    connection.sendReplayed(recent(1));
    connection.sendReplayed(recent(2));
    connection.finishReplay(true);
    connection.deliver(recent(2));
    connection.deliver(recent(3));
    connection.deliver(recent(1, 2));
    expect(transport.sent.map((f) => f.type === 'notification' && [f.seq, f.attempt])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [1, 2],
    ]);
  });

  it('remembers only recent notifications, and only for LATE_LIVE_MS', () => {
    const transport = new FakeTransport();
    const connection = connectionOn(transport);
    const now = Date.now();
    connection.sendReplayed(recent(1, 1, now - 2 * LATE_LIVE_MS), now);
    connection.sendReplayed(recent(2, 1, now), now - LATE_LIVE_MS - 1);
    connection.finishReplay(true);
    // 1 was too old to be on the bus still; 2's memory ran out.
    connection.deliver(recent(1));
    connection.deliver(recent(2));
    expect(sentSeqs(transport)).toEqual([1, 2, 1, 2]);
  });
});
