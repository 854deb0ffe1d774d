import { Connection } from './connection';

const NONE: readonly Connection[] = [];

/**
 * This replica's live connections, by id and by user. A user with one connection (the usual case) maps
 * to it directly; a Set is made only for a second one: an idle connection carries no Set of its own.
 * (No `@Injectable()`: it has no dependencies, and so it stays free of Nest for its unit test.)
 */
export class ConnectionRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly byUser = new Map<string, Connection | Set<Connection>>();

  add(connection: Connection): void {
    this.byId.set(connection.id, connection);
    const held = this.byUser.get(connection.userId);
    if (held === undefined) this.byUser.set(connection.userId, connection);
    else if (held instanceof Set) held.add(connection);
    else if (held !== connection) this.byUser.set(connection.userId, new Set([held, connection]));
  }

  /** False when the connection was not registered (refused during shutdown, or removed already). */
  remove(connection: Connection): boolean {
    if (!this.byId.delete(connection.id)) return false;
    const held = this.byUser.get(connection.userId);
    if (held === connection) {
      this.byUser.delete(connection.userId);
    } else if (held instanceof Set) {
      held.delete(connection);
      if (held.size === 1) this.byUser.set(connection.userId, held.values().next().value!);
    }
    return true;
  }

  get(connectionId: string): Connection | undefined {
    return this.byId.get(connectionId);
  }

  connectionsOf(userId: string): Iterable<Connection> {
    const held = this.byUser.get(userId);
    return held === undefined ? NONE : held instanceof Set ? held : [held];
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
