import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxBinary, nginxRender, nginxTest } from '../../test/helpers/edge';
import { freePort } from '../../test/helpers/replica';
import { waitFor } from '../../test/helpers/wait';
import { childPids, stopProcess } from './proc';

/** An Nginx in front of a target's processes, as a storm drives it. */
export interface EdgeControl {
  /** Fast stop (SIGTERM, `nginx -s stop`): every open connection is closed at once. */
  stop(): Promise<void>;
  /** Starts it again on the same port, with the same config. */
  restart(): Promise<void>;
  /** Its worker processes now. */
  workerPids(): number[];
}

/** How a scenario wants its Nginx: the same knobs for Herald's edge (nginx/render.js) and the baselines'. */
export interface EdgeSettings {
  /** Per-address limits at the production defaults (nginx/render.js); else lifted, as load from one address needs. */
  defaultLimits?: boolean;
  workerProcesses?: number;
  workerConnections?: number;
  /** `listen … reuseport`: connections spread evenly over the workers. */
  reusePort?: boolean;
}

/**
 * A small Nginx of our own for the baselines: round-robin upstream, WebSocket upgrade, as Herald's /ws.
 * With `defaultLimits`, the same per-address limits as Herald's edge (open connections, handshakes per
 * second with a burst, 429 beyond), so a storm meets the same proxy in front of every server.
 */
export class BaselineEdge implements EdgeControl {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly configFile: string,
  ) {}

  static async start(ports: number[], settings: EdgeSettings = {}): Promise<BaselineEdge> {
    const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'tmp'));
    const port = await freePort();
    const limits = settings.defaultLimits
      ? `
  limit_conn_zone $binary_remote_addr zone=conns_per_ip:10m;
  limit_req_zone $binary_remote_addr zone=handshakes_per_ip:10m rate=${nginxRender.DEFAULT_HANDSHAKES_PER_SECOND}r/s;
  limit_conn_status 429;
  limit_req_status 429;`
      : '';
    const limited = settings.defaultLimits
      ? `
      limit_conn conns_per_ip ${nginxRender.DEFAULT_CONNECTIONS_PER_IP};
      limit_req zone=handshakes_per_ip burst=${nginxRender.DEFAULT_HANDSHAKE_BURST} nodelay;`
      : '';
    const config = `
worker_processes ${settings.workerProcesses ?? 'auto'};
worker_rlimit_nofile 20000;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections ${settings.workerConnections ?? 8192}; }
http {
  access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${join(dir, 'tmp', k)};`).join('\n')}
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }${limits}
  upstream backends {
${ports.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port}${settings.reusePort ? ' reuseport' : ''};
    location / {${limited}
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, config);
    nginxTest(file);
    const edge = new BaselineEdge(port, file);
    await edge.restart();
    return edge;
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error('nginx is still running');
    const child = spawn(nginxBinary(), ['-c', this.configFile, '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.child = child;
    await waitFor(
      `baseline nginx on :${this.port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`baseline nginx exited with ${child.exitCode}`);
        return (await fetch(`http://127.0.0.1:${this.port}/`)).ok;
      },
      10_000,
      50,
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child) await stopProcess(child);
  }

  workerPids(): number[] {
    return this.child ? childPids(this.child.pid!) : [];
  }
}
