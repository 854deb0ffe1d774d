import type { AdminConnection } from '@herald/protocol';
import { applyConnectionEvent, perReplica } from './connections-store';

const connection = (id: string, userId: string, replicaId = 'r1'): AdminConnection => ({
  connectionId: id,
  userId,
  replicaId,
  connectedAt: '2026-11-25T10:00:00.000Z',
  remoteAddress: '127.0.0.1',
  userAgent: 'test',
  topics: [],
  lastAckAt: null,
});

describe('applyConnectionEvent', () => {
  it('adds an opened connection once, removes a closed one, and records acks', () => {
    const { connectionId, userId, replicaId, connectedAt, remoteAddress, userAgent } = connection('c2', 'bob', 'r2');
    const opened = { connectionId, userId, replicaId, connectedAt, remoteAddress, userAgent };
    let list = [connection('c1', 'alice')];
    list = applyConnectionEvent(list, { type: 'connection.opened', connection: opened });
    list = applyConnectionEvent(list, { type: 'connection.opened', connection: opened });
    expect(list.map((c) => c.connectionId)).toEqual(['c1', 'c2']);
    list = applyConnectionEvent(list, { type: 'user.acked', userId: 'alice', at: '2026-11-25T10:01:00.000Z' });
    expect(list[0]!.lastAckAt).toBe('2026-11-25T10:01:00.000Z');
    list = applyConnectionEvent(list, {
      type: 'connection.closed',
      connectionId: 'c1',
      userId: 'alice',
      replicaId: 'r1',
      code: 1000,
    });
    expect(list.map((c) => c.connectionId)).toEqual(['c2']);
  });

  it('counts connections per replica, sorted by replica', () => {
    expect(perReplica([connection('a', 'x', 'r2'), connection('b', 'y', 'r1'), connection('c', 'z', 'r2')])).toEqual([
      { replicaId: 'r1', count: 1 },
      { replicaId: 'r2', count: 2 },
    ]);
  });
});
