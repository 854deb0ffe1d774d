import { Connection, ConnectionLimits } from './connection';
import { ConnectionRegistry } from './connection-registry';
import type { ClientTransport } from './transport';

const LIMITS: ConnectionLimits = {
  maxBufferedBytes: 100_000,
  framesPerSecond: 10,
  framesBurst: 20,
  ackThroughWindow: 100,
};
const transport: ClientTransport = {
  kind: 'websocket',
  answersPings: true,
  isOpen: true,
  bufferedAmount: 0,
  send: () => undefined,
  ping: () => undefined,
  close: () => undefined,
  terminate: () => undefined,
};

function connection(id: string, userId: string): Connection {
  return new Connection(
    { id, userId, connectedAt: Date.now(), remoteAddress: '', userAgent: '', tokenExpiresAt: 0 },
    transport,
    LIMITS,
  );
}

describe('ConnectionRegistry', () => {
  it('finds every connection of a user, from one to several and back, by user and by id', () => {
    const registry = new ConnectionRegistry();
    const a = connection('a', 'u1');
    const b = connection('b', 'u1');
    const c = connection('c', 'u1');
    const other = connection('d', 'u2');
    expect([...registry.connectionsOf('u1')]).toEqual([]);
    registry.add(a);
    registry.add(other);
    expect([...registry.connectionsOf('u1')]).toEqual([a]);
    registry.add(a); // twice: still once
    expect([...registry.connectionsOf('u1')]).toEqual([a]);
    registry.add(b);
    registry.add(c);
    expect([...registry.connectionsOf('u1')]).toEqual([a, b, c]);
    expect(registry.remove(b)).toBe(true);
    expect(registry.remove(b)).toBe(false);
    expect([...registry.connectionsOf('u1')]).toEqual([a, c]);
    expect(registry.remove(a)).toBe(true);
    expect([...registry.connectionsOf('u1')]).toEqual([c]);
    expect(registry.get('c')).toBe(c);
    expect(registry.hasUser('u1')).toBe(true);
    expect(registry.remove(c)).toBe(true);
    expect(registry.hasUser('u1')).toBe(false);
    expect([...registry.connectionsOf('u1')]).toEqual([]);
    expect(registry.userIds()).toEqual(['u2']);
    expect(registry.size).toBe(1);
  });
});
