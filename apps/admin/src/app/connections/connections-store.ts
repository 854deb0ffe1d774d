import type { AdminConnection, AdminEvent } from '@herald/protocol';

/** The live connection list: a snapshot, then every opened/closed event applied in order. Pure, so it is easy to test. */
export function applyConnectionEvent(list: AdminConnection[], event: AdminEvent): AdminConnection[] {
  switch (event.type) {
    case 'connection.opened':
      if (list.some((c) => c.connectionId === event.connection.connectionId)) return list;
      return [...list, { ...event.connection, topics: [], lastAckAt: null }];
    case 'connection.closed':
      return list.filter((c) => c.connectionId !== event.connectionId);
    case 'user.acked':
      return list.map((c) => (c.userId === event.userId ? { ...c, lastAckAt: event.at } : c));
    case 'notification.progress':
      return list;
  }
}

export function perReplica(list: AdminConnection[]): { replicaId: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const c of list) counts.set(c.replicaId, (counts.get(c.replicaId) ?? 0) + 1);
  return [...counts]
    .map(([replicaId, count]) => ({ replicaId, count }))
    .sort((a, b) => a.replicaId.localeCompare(b.replicaId));
}
