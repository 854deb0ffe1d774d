import { Injectable } from '@nestjs/common';
import { Connection } from './connection';

/** This replica's live connections, by id and by user. */
@Injectable()
export class ConnectionRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();

  add(connection: Connection): void {
    this.byId.set(connection.id, connection);
    let set = this.byUser.get(connection.userId);
    if (!set) {
      set = new Set();
      this.byUser.set(connection.userId, set);
    }
    set.add(connection);
  }

  /** False when the connection was not registered (refused during shutdown, or removed already). */
  remove(connection: Connection): boolean {
    if (!this.byId.delete(connection.id)) return false;
    const set = this.byUser.get(connection.userId);
    set?.delete(connection);
    if (set?.size === 0) this.byUser.delete(connection.userId);
    return true;
  }

  get(connectionId: string): Connection | undefined {
    return this.byId.get(connectionId);
  }

  connectionsOf(userId: string): ReadonlySet<Connection> {
    return this.byUser.get(userId) ?? new Set();
  }

  hasUser(userId: string): boolean {
    return this.byUser.has(userId);
  }

  userIds(): string[] {
    return [...this.byUser.keys()];
  }

  all(): IterableIterator<Connection> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }
}
