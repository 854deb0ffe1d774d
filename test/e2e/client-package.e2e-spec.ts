import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publish, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { repoRoot } from '../helpers/paths';

const root = repoRoot();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The repository's `ws`, handed to the SDK as any Node app would hand its own (`WebSocket` option). */
const wsModule = require.resolve('ws');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** What a consumer writes: one program per module system, type-checked against the installed package only. */
const TYPE_CHECKS = {
  'esm.mts': `import { HeraldClient, ReadyState, type Notification, type NotificationFrame, type ServerFrame } from '@herald/client';
const client = new HeraldClient({ url: 'ws://localhost/ws', token: 't' });
client.onNotification((n: Notification) => { const seq: number = n.seq; void seq; });
const open: ReadyState = ReadyState.OPEN;
const frame: ServerFrame['type'] = 'welcome';
// @ts-expect-error the frame types are written out, not \`any\`: a notification needs its fields
const bad: NotificationFrame = { type: 'notification' };
void [open, frame, bad];
`,
  'cjs.cts': `import client = require('@herald/client');
const c = new client.HeraldClient({ url: 'ws://localhost/ws', token: 't' });
const state: client.ReadyState = c.readyState;
// @ts-expect-error an unknown option is refused
new client.HeraldClient({ url: 'ws://localhost/ws', tokn: 't' });
void state;
`,
};

/** A consumer program: connects with the installed SDK, prints `open`, then the first notification, and stops. */
function program(kind: 'esm' | 'cjs'): string {
  const load =
    kind === 'esm'
      ? `import { HeraldClient } from '@herald/client';\nimport WebSocket from ${JSON.stringify(wsModule)};`
      : `const { HeraldClient } = require('@herald/client');\nconst WebSocket = require(${JSON.stringify(wsModule)});`;
  return `${load}
const client = new HeraldClient({ url: process.env.HERALD_URL, token: process.env.HERALD_TOKEN, WebSocket });
client.on('state', (state) => { if (state === HeraldClient.OPEN) console.log('open'); });
client.onNotification((n) => { console.log(JSON.stringify({ id: n.id, event: n.event, payload: n.payload })); client.close(); });
client.connect();
setTimeout(() => { console.error('no notification within 20 s'); process.exit(1); }, 20_000).unref();
`;
}

describe('@herald/client as a package: packed, installed alone, type-checked and connected', () => {
  let cluster: TestCluster;
  let project: string;
  let packed: { filename: string; size: number; unpackedSize: number; entryCount: number };

  beforeAll(async () => {
    if (!existsSync(join(root, 'libs', 'client', 'dist', 'index.d.ts'))) {
      throw new Error('libs/client/dist is missing: run `npm run build` (node libs/client/build-package.mjs)');
    }
    project = mkdtempSync(join(tmpdir(), 'herald-sdk-consumer-'));
    const out = execFileSync(npm, ['pack', join(root, 'libs', 'client'), '--json', '--pack-destination', project], {
      encoding: 'utf8',
    });
    packed = (JSON.parse(out) as (typeof packed)[])[0]!;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true }));
    execFileSync(
      npm,
      [
        'install',
        `./${packed.filename}`,
        '--offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
      ],
      { cwd: project, encoding: 'utf8' },
    );
    cluster = await TestCluster.start('sdkpack', 1);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('installs with nothing else: no dependency of any kind, four files of code and types', () => {
    process.stdout.write(
      `@herald/client packed: ${packed.filename}, ${packed.size} bytes (${packed.unpackedSize} unpacked, ${packed.entryCount} files)\n`,
    );
    const installed = readdirSync(join(project, 'node_modules')).filter((name) => !name.startsWith('.'));
    expect(installed).toEqual(['@herald']);
    expect(readdirSync(join(project, 'node_modules', '@herald'))).toEqual(['client']);
    const dist = join(project, 'node_modules', '@herald', 'client', 'dist');
    expect(readdirSync(dist).sort()).toEqual(['index.cjs', 'index.d.cts', 'index.d.ts', 'index.js']);
    expect(statSync(join(dist, 'index.js')).size).toBeGreaterThan(0);
  });

  it('type-checks an import from an ES module and from CommonJS against the package alone', () => {
    for (const [file, text] of Object.entries(TYPE_CHECKS)) writeFileSync(join(project, file), text);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'node16',
          moduleResolution: 'node16',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: [],
          noUnusedLocals: true,
        },
        files: Object.keys(TYPE_CHECKS),
      }),
    );
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', project], { cwd: project, encoding: 'utf8' });
    } catch (error) {
      output = (error as { stdout?: string }).stdout ?? String(error);
    }
    expect(output).toBe('');
  });

  it.each(['esm', 'cjs'] as const)(
    'connects to a replica and receives a notification (%s)',
    async (kind) => {
      const file = join(project, kind === 'esm' ? 'receive.mjs' : 'receive.cjs');
      writeFileSync(file, program(kind));
      const userId = `pkg-${kind}-${randomUUID().slice(0, 8)}`;
      const child = spawn(process.execPath, [file], {
        cwd: project,
        env: { ...process.env, HERALD_URL: `${cluster.replicas[0]!.ws}`, HERALD_TOKEN: userToken(userId) },
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('open\n')) resolve();
        });
        void exited.then((code) => reject(new Error(`exited ${code} before it was open: ${stderr}`)));
      });
      const sent = await publish(cluster.replicas[0]!.http, {
        to: { users: [userId] },
        event: 'package.check',
        payload: { kind },
      });
      expect(await exited).toBe(0);
      const received = JSON.parse(stdout.split('\n')[1]!) as { id: string; event: string; payload: unknown };
      expect(received).toEqual({ id: sent.id, event: 'package.check', payload: { kind } });
    },
    30_000,
  );
});
