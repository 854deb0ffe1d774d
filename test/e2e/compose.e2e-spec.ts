import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { nginxRender } from '../helpers/edge';
import { repoRoot } from '../helpers/paths';

const root = repoRoot();
const SECRETS = {
  HERALD_API_KEYS: 'compose-check-key-0123456789',
  HERALD_JWT_SECRET: 'x'.repeat(40),
  POSTGRES_PASSWORD: 'pw',
};

interface ComposeService {
  image?: string;
  profiles?: string[];
  command?: string | string[];
  restart?: string;
  build?: { context: string; target?: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes?: (string | { source: string; target: string })[];
  ports?: (string | { published: number | string; target: number })[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  depends_on?: Record<string, { condition: string }>;
}

/** `docker-compose config`: the validator that needs no Docker engine (CI installs Debian's docker-compose). */
function composeConfig(
  env: Record<string, string>,
  profiles: string[] = [],
): { status: number | null; stdout: string; stderr: string } {
  // An empty --env-file: a developer's own .env must not change what is checked.
  const emptyEnv = join(mkdtempSync(join(tmpdir(), 'herald-compose-')), 'empty.env');
  writeFileSync(emptyEnv, '');
  const result = spawnSync(
    'docker-compose',
    [
      '--env-file',
      emptyEnv,
      '-f',
      join(root, 'docker-compose.yml'),
      ...profiles.flatMap((p) => ['--profile', p]),
      'config',
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', ...env },
    },
  );
  if (result.error)
    throw new Error(`docker-compose is not installed (apt-get install docker-compose): ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('docker-compose.yml and the Dockerfile', () => {
  it('validates, and names each missing secret instead of starting without it', () => {
    const valid = composeConfig(SECRETS);
    expect({ status: valid.status, stderr: valid.stderr }).toEqual({ status: 0, stderr: '' });

    const missing = composeConfig({ HERALD_API_KEYS: SECRETS.HERALD_API_KEYS, POSTGRES_PASSWORD: 'pw' });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('set HERALD_JWT_SECRET in .env');
  });

  it('runs PostgreSQL, Redis, two replicas and Nginx, each health-checked, with data on volumes', () => {
    const config = parse(composeConfig(SECRETS).stdout) as {
      services: Record<string, ComposeService>;
      volumes: Record<string, unknown>;
    };
    // Services of a profile (the Redis Cluster's) start only with it; docker-compose 1.x lists them all the same.
    const services = Object.fromEntries(Object.entries(config.services).filter(([, s]) => !s.profiles?.length));
    expect(Object.keys(services).sort()).toEqual(['herald-1', 'herald-2', 'nginx', 'postgres', 'redis']);
    for (const [name, service] of Object.entries(services)) {
      expect({ name, healthcheck: Array.isArray(service.healthcheck?.test) }).toEqual({ name, healthcheck: true });
    }
    const volumeTargets = (s: ComposeService) =>
      (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
    expect(volumeTargets(services.postgres!)).toEqual(['/var/lib/postgresql/data']);
    expect(volumeTargets(services.redis!)).toEqual(['/data']);
    expect(Object.keys(config.volumes).filter((v) => !v.startsWith('redis-node-'))).toEqual(['pgdata', 'redisdata']);

    // The rendered Nginx config points at these replicas' fixed addresses, on the port they listen on.
    const nginxConfig = readFileSync(nginxRender.COMPOSE_OUTPUT, 'utf8');
    const upstreams = [...nginxConfig.matchAll(/^\s*server (\S+) max_fails=2/gm)].map((m) => m[1]);
    const replicas = ['herald-1', 'herald-2'];
    expect(upstreams).toEqual(
      replicas.map((name) => `${services[name]!.networks!.herald!.ipv4_address}:${services[name]!.environment!.PORT}`),
    );
    const nginxAddress = services.nginx!.networks!.herald!.ipv4_address;
    for (const name of replicas) {
      const service = services[name]!;
      expect(service.build?.target).toBe('herald');
      expect(service.environment).toMatchObject({
        REPLICA_ID: name,
        HERALD_TRUSTED_PROXIES: nginxAddress,
        REDIS_URL: 'redis://redis:6379',
        REDIS_CLUSTER_NODES: '',
      });
      expect(service.depends_on).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
    }
    expect(services.nginx!.build?.target).toBe('edge');
    const published = (services.nginx!.ports ?? []).map((p) =>
      typeof p === 'string' ? p : `${p.published}:${p.target}`,
    );
    expect(published).toEqual(['8080:8080']);
  });

  it('with profile cluster, runs six Redis Cluster nodes and a one-shot init, and the replicas use the cluster', () => {
    const nodes = 'redis-node-1:6379,redis-node-2:6379,redis-node-3:6379';
    const rendered = composeConfig({ ...SECRETS, REDIS_URL: '', REDIS_CLUSTER_NODES: nodes }, ['cluster']);
    expect({ status: rendered.status, stderr: rendered.stderr }).toEqual({ status: 0, stderr: '' });
    const config = parse(rendered.stdout) as {
      services: Record<string, ComposeService>;
      volumes: Record<string, unknown>;
    };
    const services = config.services;
    const names = [1, 2, 3, 4, 5, 6].map((i) => `redis-node-${i}`);
    expect(Object.keys(services).filter((name) => services[name]!.profiles?.includes('cluster'))).toEqual(
      expect.arrayContaining([...names, 'redis-cluster-init']),
    );
    const words = (command: string | string[] | undefined): string[] =>
      typeof command === 'string' ? command.split(/\s+/) : (command ?? []);
    const addresses: string[] = [];
    for (const name of names) {
      const node = services[name]!;
      const address = node.networks!.herald!.ipv4_address!;
      addresses.push(`${address}:6379`);
      expect({ name, image: node.image, profiles: node.profiles }).toEqual({
        name,
        image: 'redis:7-alpine',
        profiles: ['cluster'],
      });
      const command = words(node.command).join(' ');
      expect(command).toContain('--cluster-enabled yes --cluster-node-timeout 5000 --appendonly yes');
      // It announces the fixed address it has on the network: what clients are sent to.
      expect(command).toContain(`--cluster-announce-ip ${address}`);
      expect(node.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
      expect(
        (node.volumes ?? []).map((v) =>
          typeof v === 'string' ? v.split(':').slice(0, 2).join(':') : `${v.source}:${v.target}`,
        ),
      ).toEqual([`${name}-data:/data`]);
      expect(Object.keys(config.volumes)).toContain(`${name}-data`);
    }
    expect(new Set(addresses).size).toBe(6);

    const init = services['redis-cluster-init']!;
    expect(init.image).toBe('redis:7-alpine');
    expect(init.restart).toBe('no');
    expect(init.depends_on).toEqual(Object.fromEntries(names.map((name) => [name, { condition: 'service_healthy' }])));
    const script = words(init.command).join(' ');
    expect(script).toContain(`redis-cli --cluster create ${addresses.join(' ')} --cluster-replicas 1 --cluster-yes`);
    expect(script).toContain('cluster_state:ok');

    for (const name of ['herald-1', 'herald-2']) {
      expect({ name, ...services[name]!.environment }).toMatchObject({
        name,
        REDIS_URL: '',
        REDIS_CLUSTER_NODES: nodes,
      });
    }
  });

  it('builds the image with the same commands as a local checkout, from files that exist', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const runs = [...dockerfile.matchAll(/^RUN (.+)$/gm)].map((m) => m[1]);
    expect(runs).toEqual(['npm ci --no-audit --no-fund', 'npm run build', 'npm prune --omit=dev --no-audit --no-fund']);
    // npm run up and npm test install and build the same way.
    expect(readFileSync(join(root, 'scripts', 'stack', 'commands.mjs'), 'utf8')).toContain(
      "run('npm', ['ci', '--no-audit', '--no-fund'])",
    );
    expect(readFileSync(join(root, 'scripts', 'stack', 'commands.mjs'), 'utf8')).toContain(
      "run('npm', ['run', '--silent', 'build'])",
    );
    expect(readFileSync(join(root, 'scripts', 'test.mjs'), 'utf8')).toContain(
      "'npm', ['ci', '--no-audit', '--no-fund']",
    );

    // Sources from the build context exist; what the build stage copies out is what `npm run build` makes.
    const copies = [...dockerfile.matchAll(/^COPY (.+)$/gm)].map((m) => m[1]!.split(/\s+/));
    expect(copies.length).toBeGreaterThan(5);
    for (const words of copies) {
      const fromStage = words.some((w) => w.startsWith('--from='));
      const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
      for (const source of sources) {
        if (fromStage) expect(source).toMatch(/^\/app\//);
        const path = join(root, source.replace(/^\/app\//, ''));
        expect({ source, exists: existsSync(path) }).toEqual({ source, exists: true });
      }
    }
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.stack', '.env', '.git']));
  });
});
