/** Command-line options of a scenario: `--name value` pairs and the `--smoke` flag. */
export class Args {
  constructor(private readonly argv: string[] = process.argv.slice(2)) {}

  get smoke(): boolean {
    return this.argv.includes('--smoke');
  }

  /** A number: `--name 5`, else the smoke value under --smoke, else the default. */
  num(name: string, fallback: number, smoke = fallback): number {
    const i = this.argv.indexOf(`--${name}`);
    if (i >= 0) {
      const value = Number(this.argv[i + 1]);
      if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
      return value;
    }
    return this.smoke ? smoke : fallback;
  }

  /** A comma-separated list of numbers: `--sizes 5000,19000`. */
  nums(name: string, fallback: number[], smoke = fallback): number[] {
    const i = this.argv.indexOf(`--${name}`);
    if (i >= 0) return (this.argv[i + 1] ?? '').split(',').map(Number);
    return this.smoke ? smoke : fallback;
  }

  /** One of a few words: `--name word`, else the default. */
  choice<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const i = this.argv.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const value = this.argv[i + 1] ?? '';
    if (!(allowed as readonly string[]).includes(value))
      throw new Error(`--${name} needs one of ${allowed.join(', ')}`);
    return value as T;
  }

  /** Which servers to run (`--servers herald,raw-ws`); `defaults` when not given. */
  servers(defaults: readonly ServerName[] = DEFAULT_SERVERS): ServerName[] {
    const i = this.argv.indexOf('--servers');
    if (i < 0) return [...defaults];
    const names = (this.argv[i + 1] ?? '').split(',');
    for (const n of names) if (!(SERVER_NAMES as readonly string[]).includes(n)) throw new Error(`unknown server ${n}`);
    return names as ServerName[];
  }
}

/**
 * Every server the bench can run. raw-ws-acks is the raw `ws` server whose clients ack every notification
 * by id (the server parses and counts them): the floor for a server that reads an ack per delivery.
 */
export const SERVER_NAMES = ['herald', 'raw-ws', 'raw-ws-acks', 'socket.io'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

/** The servers of a scenario where acks play no part (idle, ingest). */
export const DEFAULT_SERVERS: readonly ServerName[] = ['herald', 'raw-ws', 'socket.io'];

/** The servers of a scenario whose clients ack what they receive (broadcast, unicast, catch-up). */
export const ACKING_SERVERS: readonly ServerName[] = SERVER_NAMES;

/**
 * How Herald's load clients ack: `through` as the SDK does by default (acks coalesced over 5 ms, one
 * `ack … through` per flush of two or more when the server lists `ackThrough`), `ids` as the client before it (the acks of
 * one read in one `ack` or `acks` frame). `--herald-acks ids` gives the A/B.
 */
export const HERALD_ACK_MODES = ['through', 'ids'] as const;
