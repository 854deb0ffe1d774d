import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths';
import { freePort } from './replica';
import { waitFor } from './wait';

interface EdgeOptions {
  listen: string;
  upstreams: string[];
  adminRoot: string;
  maxBodyBytes?: number;
  dir?: string;
  allowedOrigins?: string[];
  connectionsPerIp?: number;
  handshakesPerSecond?: number;
  handshakeBurst?: number;
  workerProcesses?: number;
  workerConnections?: number;
}

/** What a test may set in the rendered config besides where things are. */
export type EdgeLimits = Pick<
  EdgeOptions,
  | 'allowedOrigins'
  | 'connectionsPerIp'
  | 'handshakesPerSecond'
  | 'handshakeBurst'
  | 'workerProcesses'
  | 'workerConnections'
> & {
  /**
   * `listen … reuseport`: the kernel spreads new connections evenly over the workers, so none holds more
   * than its share (without it one worker can take most of a burst, and pass the open-file cap).
   */
  reusePort?: boolean;
};

/** The renderer shared with `npm run up` and the compose config (CommonJS, so Jest can load it). */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain-JS script, not a TS module
export const nginxRender = require(join(repoRoot(), 'nginx', 'render.js')) as {
  render(target: 'compose' | 'local', options: EdgeOptions): string;
  renderCompose(): string;
  COMPOSE_OUTPUT: string;
  PLACEHOLDER_ROOT: string;
  DEMO_ROOT: string;
  DEFAULT_MAX_BODY_BYTES: number;
  DEFAULT_CONNECTIONS_PER_IP: number;
  DEFAULT_HANDSHAKES_PER_SECOND: number;
  DEFAULT_HANDSHAKE_BURST: number;
  WS_TIMEOUT: string;
};

/** The Nginx binary; CI installs it (.ci/run). A missing one fails the test instead of skipping it. */
export function nginxBinary(): string {
  for (const candidate of [
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/bin/nginx',
    '/opt/homebrew/bin/nginx',
  ]) {
    if (existsSync(candidate)) return candidate;
  }
  const found = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  throw new Error(
    'nginx is not installed: on Debian/Ubuntu run `apt-get install -y nginx` (`npm test` does it as root)',
  );
}

/** `nginx -t` on a config file; resolves with the combined output, throws when it is refused. */
export function nginxTest(configFile: string, wrap: string[] = []): string {
  const command = [...wrap, nginxBinary(), '-t', '-c', configFile];
  const result = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`nginx -t refused ${configFile}:\n${output}`);
  return output;
}

/** Nginx in front of replicas, with the local render of the production template, on a free port. */
export class Edge {
  private process: ChildProcess | null = null;
  private exit: Promise<number | null> = Promise.resolve(null);

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly configFile: string,
  ) {}

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  static async start(upstreamPorts: number[], options: { adminRoot?: string } & EdgeLimits = {}): Promise<Edge> {
    const dir = mkdtempSync(join(tmpdir(), 'herald-edge-'));
    // Workers run as nobody when the master is root: they must reach the temp folders Nginx makes here.
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'tmp'));
    const port = await freePort();
    const configFile = join(dir, 'nginx.conf');
    writeFileSync(
      configFile,
      nginxRender.render('local', {
        ...options,
        listen: `127.0.0.1:${port}${options.reusePort ? ' reuseport' : ''}`,
        upstreams: upstreamPorts.map((p) => `127.0.0.1:${p}`),
        adminRoot: options.adminRoot ?? nginxRender.PLACEHOLDER_ROOT,
        dir,
      }),
    );
    nginxTest(configFile);
    const edge = new Edge(port, dir, configFile);
    await edge.launch();
    return edge;
  }

  /** Runs Nginx on this config in the foreground and waits until it answers. */
  private async launch(): Promise<void> {
    const child = spawn(nginxBinary(), ['-c', this.configFile, '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.process = child;
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      `nginx on :${this.port}`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`nginx exited with ${child.exitCode}: ${stderr}${this.errorLog()}`);
        const response = await fetch(`${this.http}/`, { redirect: 'manual' });
        return response.status === 302;
      },
      10_000,
      50,
    );
  }

  /** Fast stop (SIGTERM): open connections are closed at once. */
  async stop(): Promise<void> {
    if (!this.process) return;
    this.process.kill('SIGTERM');
    await this.exit;
    this.process = null;
  }

  /** The master's pid, from the pid file the config names (what `nginx -s` reads). */
  masterPid(): number {
    return Number(readFileSync(join(this.dir, 'nginx.pid'), 'utf8').trim());
  }

  /**
   * `nginx -s reload`: SIGHUP to the master named in the pid file. New workers take new connections at
   * once; the old ones finish their requests and close what they still hold (WebSockets) after
   * worker_shutdown_timeout. Resolves when the signal is sent: the caller watches the workers.
   */
  async reload(): Promise<void> {
    if (!this.process) throw new Error('nginx is not running');
    const pid = this.masterPid();
    if (pid !== this.process.pid) throw new Error(`the pid file names ${pid}, not the master ${this.process.pid}`);
    nginxTest(this.configFile);
    process.kill(pid, 'SIGHUP');
  }

  /**
   * Graceful stop (`nginx -s quit`, SIGQUIT): the listeners close at once, open connections get up to
   * worker_shutdown_timeout. Resolves when the master has exited.
   */
  async quit(): Promise<void> {
    if (!this.process) return;
    this.process.kill('SIGQUIT');
    await this.exit;
    this.process = null;
  }

  /** Starts Nginx again with the same config, on the same port (after stop() or quit()). */
  async restart(): Promise<void> {
    if (this.process) throw new Error('nginx is still running');
    await this.launch();
  }

  accessLog(): string {
    return read(join(this.dir, 'access.log'));
  }

  errorLog(): string {
    return read(join(this.dir, 'error.log'));
  }
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
