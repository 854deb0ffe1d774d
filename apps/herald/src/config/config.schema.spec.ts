import { publisherKeyId } from '../auth/publisher-key-id';
import { ConfigError, parseConfig } from './config.schema';

const minimal = { HERALD_API_KEYS: 'key-0123456789abcdef', HERALD_JWT_SECRET: 's'.repeat(32) };

describe('parseConfig', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig(minimal);
    expect(config).toMatchObject({
      port: 3000,
      ackTimeoutMs: 10000,
      redeliveryMaxAttempts: 5,
      defaultTtlSeconds: 86400,
      maxMessageBytes: 65536,
      heartbeatMs: 25000,
      closeTimeoutMs: 5000,
      allowedOrigins: ['*'],
      apiKeys: ['key-0123456789abcdef'],
      redisPrefix: 'herald',
      trustedProxies: [],
      host: '',
    });
    expect(config.replicaId).toMatch(/^[A-Za-z0-9_.-]+-\d+$/);
  });

  it('runs on one Redis by default, on a cluster with REDIS_CLUSTER_NODES and an empty REDIS_URL', () => {
    expect(parseConfig(minimal).redis).toEqual({
      mode: 'single',
      url: 'redis://127.0.0.1:6379',
      username: '',
      password: '',
      tls: false,
    });
    const cluster = parseConfig({
      ...minimal,
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: '10.0.0.5:7000, redis-2.internal:7001',
      REDIS_PASSWORD: 'secret',
      REDIS_USERNAME: 'herald',
      REDIS_TLS: 'true',
    });
    expect(cluster.redis).toEqual({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.5', port: 7000 },
        { host: 'redis-2.internal', port: 7001 },
      ],
      username: 'herald',
      password: 'secret',
      tls: true,
    });
    expect(() =>
      parseConfig({ ...minimal, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '10.0.0.5:7000' }),
    ).toThrow('REDIS_URL must be empty when REDIS_CLUSTER_NODES is set');
    expect(() => parseConfig({ ...minimal, REDIS_CLUSTER_NODES: '10.0.0.5' })).toThrow(
      'each node must be host:port, such as 10.0.0.5:6379',
    );
    expect(() => parseConfig({ ...minimal, REDIS_TLS: 'yes' })).toThrow('REDIS_TLS="yes" must be true or false');
  });

  it('gives every publisher key the default limits, and named keys their own', () => {
    const id = publisherKeyId(minimal.HERALD_API_KEYS);
    expect(parseConfig(minimal)).toMatchObject({
      publishLimits: { perSecond: 100, burst: 200, recipientsPerMinute: 1_000_000 },
      publisherLimits: {},
    });
    expect(parseConfig({ ...minimal, HERALD_PUBLISHER_LIMITS: `${id}=5/10/300` }).publisherLimits).toEqual({
      [id]: { perSecond: 5, burst: 10, recipientsPerMinute: 300 },
    });
    expect(() => parseConfig({ ...minimal, HERALD_PUBLISHER_LIMITS: 'pk_000000000000=5/10/300' })).toThrow(
      'HERALD_PUBLISHER_LIMITS names pk_000000000000, which is the id of no key in HERALD_API_KEYS',
    );
    expect(() => parseConfig({ ...minimal, HERALD_PUBLISHER_LIMITS: `${id}=5/10` })).toThrow(
      'each entry must be pk_<12 hex digits>=<per second>/<burst>/<recipients per minute>',
    );
    expect(() => parseConfig({ ...minimal, HERALD_PUBLISHER_LIMITS: `${id}=0/10/300` })).toThrow(
      'each number must be at least 1',
    );
    expect(() => parseConfig({ ...minimal, HERALD_PUBLISHER_LIMITS: `${id}=1/1/1,${id}=2/2/2` })).toThrow(
      `names ${id} twice`,
    );
  });

  it('splits comma-separated lists', () => {
    const config = parseConfig({
      ...minimal,
      HERALD_API_KEYS: ' a-key-0123456789abcdef , b-key-0123456789abcdef ,',
      HERALD_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:4200',
    });
    expect(config.apiKeys).toEqual(['a-key-0123456789abcdef', 'b-key-0123456789abcdef']);
    expect(config.allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:4200']);
  });

  it('accepts proxy addresses, ranges and named ranges, and refuses anything else', () => {
    const config = parseConfig({ ...minimal, HERALD_TRUSTED_PROXIES: '127.0.0.1, 172.28.0.0/16,loopback' });
    expect(config.trustedProxies).toEqual(['127.0.0.1', '172.28.0.0/16', 'loopback']);
    expect(parseConfig({ ...minimal, HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(() => parseConfig({ ...minimal, HOST: 'localhost' })).toThrow(/HOST="localhost" must be an IP address/);
    expect(() => parseConfig({ ...minimal, HERALD_TRUSTED_PROXIES: 'nginx.local' })).toThrow(
      /HERALD_TRUSTED_PROXIES="nginx.local" each entry must be an IP address/,
    );
  });

  it('names every bad or missing value at once, hiding secrets', () => {
    let error: ConfigError | undefined;
    try {
      parseConfig({
        PORT: '0',
        HERALD_ACK_TIMEOUT_MS: '1.5',
        DATABASE_URL: 'mysql://user:pw@host/db',
        HERALD_ALLOWED_ORIGINS: 'app.example.com',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = error!.problems.map((p) => p.split(/[= ]/)[0]);
    expect(names.sort()).toEqual(
      [
        'DATABASE_URL',
        'HERALD_ACK_TIMEOUT_MS',
        'HERALD_ALLOWED_ORIGINS',
        'HERALD_API_KEYS',
        'HERALD_JWT_SECRET',
        'LOG_LEVEL',
        'PORT',
      ].sort(),
    );
    expect(error!.message).not.toContain('pw@host');
  });

  it('checks values against each other', () => {
    expect(() =>
      parseConfig({ ...minimal, HERALD_REDELIVERY_BACKOFF_MS: '5000', HERALD_REDELIVERY_MAX_BACKOFF_MS: '1000' }),
    ).toThrow(/HERALD_REDELIVERY_MAX_BACKOFF_MS/);
  });
});
