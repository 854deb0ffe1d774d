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

  /** Which servers to run (`--servers herald,raw-ws`); all three by default. */
  servers(): ServerName[] {
    const i = this.argv.indexOf('--servers');
    if (i < 0) return [...SERVER_NAMES];
    const names = (this.argv[i + 1] ?? '').split(',');
    for (const n of names) if (!(SERVER_NAMES as readonly string[]).includes(n)) throw new Error(`unknown server ${n}`);
    return names as ServerName[];
  }
}

export const SERVER_NAMES = ['herald', 'raw-ws', 'socket.io'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];
