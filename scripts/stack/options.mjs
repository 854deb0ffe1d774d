// The command line of `node scripts/stack.mjs` (npm run up / down): parsed and checked, or usage.
import { join } from 'node:path';
import { fail } from './output.mjs';
import { ROOT } from './root.mjs';

export function parseArgs(argv) {
  if (['--help', '-h'].includes(argv[0])) usage(0); // `node scripts/stack.mjs --help`, as its errors suggest
  const options = {
    command: argv[0] ?? 'up',
    port: 8080,
    replicas: 2,
    database: 'herald',
    redisPrefix: 'herald',
    privateServices: false,
    postgresUrl: null,
    redisUrl: null,
    redisCluster: false,
    detach: false,
    dir: join(ROOT, '.stack'),
  };
  const rest = argv.slice(1);
  const value = (flag) => {
    const v = rest.shift();
    if (v === undefined) fail(`${flag} needs a value`);
    return v;
  };
  while (rest.length > 0) {
    const flag = rest.shift();
    switch (flag) {
      case '--port':
        options.port = integer(value(flag), flag, 1, 65535);
        break;
      case '--replicas':
        options.replicas = integer(value(flag), flag, 1, 16);
        break;
      case '--database':
        options.database = value(flag);
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.database))
          fail('--database must be a lowercase PostgreSQL name (letters, digits, _)');
        break;
      case '--redis-prefix':
        options.redisPrefix = value(flag);
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.redisPrefix))
          fail('--redis-prefix must be 1-64 letters, digits, _ . -');
        break;
      case '--private-services':
        options.privateServices = true;
        break;
      case '--postgres-url':
        options.postgresUrl = url(value(flag), flag, ['postgres:', 'postgresql:']);
        break;
      case '--redis-url':
        options.redisUrl = url(value(flag), flag, ['redis:']);
        break;
      case '--redis-cluster':
        options.redisCluster = true;
        break;
      case '--detach':
        options.detach = true;
        break;
      case '--help':
      case '-h':
        usage(0);
        break;
      default:
        fail(`unknown option ${flag}`, true);
    }
  }
  if (!['up', 'down', 'status'].includes(options.command)) fail(`unknown command ${options.command}`, true);
  if (options.redisCluster && options.redisUrl)
    fail('--redis-cluster starts a private cluster; it cannot use --redis-url too (pass one or the other)');
  return options;
}

function url(text, flag, protocols) {
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    fail(`${flag} must be a URL (${protocols[0]}//host:port/...)`);
  }
  if (!protocols.includes(parsed.protocol)) fail(`${flag} must start with ${protocols[0]}//`);
  return text;
}

function integer(text, flag, min, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

function usage(code) {
  process.stdout.write(
    [
      'usage: node scripts/stack.mjs up|down|status [options]   (npm run up / npm run down)',
      '  --port N             Nginx port (default 8080)',
      '  --replicas N         Herald replicas (default 2)',
      '  --database NAME      PostgreSQL database (default herald)',
      '  --redis-prefix P     prefix of every Redis key (default herald)',
      '  --private-services   start PostgreSQL and Redis in .stack/ even if servers answer on 5432/6379',
      '  --postgres-url URL   use this PostgreSQL server (its database NAME is created if missing)',
      '  --redis-url URL      use this Redis server',
      '  --redis-cluster      start a private Redis Cluster (3 masters + 3 replicas) in .stack/ instead of one Redis',
      '  --detach             return once the stack answers; stop it with npm run down',
      '',
    ].join('\n'),
  );
  process.exit(code);
}
