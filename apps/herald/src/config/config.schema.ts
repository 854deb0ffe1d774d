import { hostname } from 'node:os';
import { CONFIG_VARIABLES } from './config-variables';
import type { VariableSpec } from './variable';
import { PublisherLimits, publisherLimitsOf } from './publisher-limits.config';

export type ConfigVariable = keyof typeof CONFIG_VARIABLES;

export interface WebhookConfig {
  allowedCidrs: string[];
  /** `ip:port`, or '' for the system resolver. */
  dnsServer: string;
  timeoutMs: number;
  concurrency: number;
  retryMs: number;
  retryForMs: number;
  disableAfterMs: number;
}

export interface HeraldConfig {
  port: number;
  /** Empty: every interface. */
  host: string;
  databaseUrl: string;
  /** One Redis, or a Redis Cluster (REDIS_CLUSTER_NODES). */
  redis: RedisTarget;
  replicaId: string;
  apiKeys: string[];
  jwtSecret: string;
  allowedOrigins: string[];
  trustedProxies: string[];
  ackTimeoutMs: number;
  redeliveryBackoffMs: number;
  redeliveryMaxBackoffMs: number;
  redeliveryMaxAttempts: number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  maxBodyBytes: number;
  maxRecipients: number;
  /** Limits of every publisher key without an entry in `publisherLimits`. */
  publishLimits: PublisherLimits;
  /** Per-key exceptions, by key id. */
  publisherLimits: Record<string, PublisherLimits>;
  maxCommandsInFlight: number;
  maxQueuedCommands: number;
  ackThroughWindow: number;
  ackPoolSize: number;
  maxTopicsPerUser: number;
  maxConnections: number;
  maxConnectionsPerUser: number;
  maxPendingHandshakes: number;
  maxQueueAgeMs: number;
  listenBacklog: number;
  maxBufferedBytes: number;
  clientFramesPerSecond: number;
  clientFramesBurst: number;
  heartbeatMs: number;
  closeTimeoutMs: number;
  tokenMaxTtlSeconds: number;
  ticketMintsPerMinute: number;
  presenceHeartbeatMs: number;
  sweepIntervalMs: number;
  /** HERALD_RETENTION_HOURS, HERALD_IDEMPOTENCY_HOURS and HERALD_USER_RETENTION_DAYS in ms (users: 0 keeps them). */
  retentionMs: number;
  idempotencyMs: number;
  userRetentionMs: number;
  /** HERALD_INBOX_RETENTION_DAYS in ms; 0: the inbox is off. */
  inboxRetentionMs: number;
  /** Delivery webhooks (ADR 0027). */
  webhooks: WebhookConfig;
  redisPrefix: string;
  shutdownGraceMs: number;
  /** POST /v1/demo/tokens answers (demo only). */
  demoTokens: boolean;
  /** Empty: the admin API is off. */
  adminPassword: string;
  adminSessionTtlSeconds: number;
  adminLoginAttempts: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  logFormat: 'json' | 'text';
}

/** Where Redis is: one server (`REDIS_URL`) or the seed nodes of a cluster, with the credentials of both. */
export type RedisTarget =
  | { mode: 'single'; url: string; username: string; password: string; tls: boolean }
  | { mode: 'cluster'; nodes: { host: string; port: number }[]; username: string; password: string; tls: boolean };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws a ConfigError naming every bad value. */
export function parseConfig(env: Record<string, string | undefined>): HeraldConfig {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES) as [ConfigVariable, VariableSpec][]) {
    const raw = env[name] === undefined || env[name] === '' ? spec.default : env[name];
    if (raw === undefined) {
      if (name === 'REPLICA_ID') {
        values[name] = `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64);
        continue;
      }
      problems.push(`${name} is required: ${spec.description}`);
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      values[name] = result.data;
    } else {
      const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
      problems.push(`${name}=${shown} ${result.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  let limits: ReturnType<typeof publisherLimitsOf> | undefined;
  if (problems.length === 0) {
    limits = publisherLimitsOf(values, values.HERALD_API_KEYS as string[], problems);
    const min = values.HERALD_REDELIVERY_BACKOFF_MS as number;
    const max = values.HERALD_REDELIVERY_MAX_BACKOFF_MS as number;
    if (max < min)
      problems.push(`HERALD_REDELIVERY_MAX_BACKOFF_MS=${max} must not be below HERALD_REDELIVERY_BACKOFF_MS=${min}`);
    const payload = values.HERALD_MAX_PAYLOAD_BYTES as number;
    const buffered = values.HERALD_MAX_BUFFERED_BYTES as number;
    if (buffered < 2 * payload)
      problems.push(
        `HERALD_MAX_BUFFERED_BYTES=${buffered} must be at least twice HERALD_MAX_PAYLOAD_BYTES=${payload}, or a reader could be cut off for one notification`,
      );
    const ttl = values.HERALD_DEFAULT_TTL_SECONDS as number;
    const maxTtl = values.HERALD_MAX_TTL_SECONDS as number;
    if (ttl > maxTtl)
      problems.push(`HERALD_DEFAULT_TTL_SECONDS=${ttl} must not exceed HERALD_MAX_TTL_SECONDS=${maxTtl}`);
    if ((values.REDIS_CLUSTER_NODES as string[]).length > 0 && (env.REDIS_URL ?? '') !== '')
      problems.push('REDIS_URL must be empty when REDIS_CLUSTER_NODES is set (Herald runs on one or the other)');
  }
  if (problems.length > 0 || !limits) throw new ConfigError(problems);
  return {
    port: values.PORT as number,
    host: values.HOST as string,
    databaseUrl: values.DATABASE_URL as string,
    redis: redisTargetOf(values),
    replicaId: values.REPLICA_ID as string,
    apiKeys: values.HERALD_API_KEYS as string[],
    jwtSecret: values.HERALD_JWT_SECRET as string,
    allowedOrigins: values.HERALD_ALLOWED_ORIGINS as string[],
    trustedProxies: values.HERALD_TRUSTED_PROXIES as string[],
    ackTimeoutMs: values.HERALD_ACK_TIMEOUT_MS as number,
    redeliveryBackoffMs: values.HERALD_REDELIVERY_BACKOFF_MS as number,
    redeliveryMaxBackoffMs: values.HERALD_REDELIVERY_MAX_BACKOFF_MS as number,
    redeliveryMaxAttempts: values.HERALD_REDELIVERY_MAX_ATTEMPTS as number,
    defaultTtlSeconds: values.HERALD_DEFAULT_TTL_SECONDS as number,
    maxTtlSeconds: values.HERALD_MAX_TTL_SECONDS as number,
    maxMessageBytes: values.HERALD_MAX_MESSAGE_BYTES as number,
    maxPayloadBytes: values.HERALD_MAX_PAYLOAD_BYTES as number,
    maxBodyBytes: values.HERALD_MAX_BODY_BYTES as number,
    maxRecipients: values.HERALD_MAX_RECIPIENTS as number,
    publishLimits: limits.defaults,
    publisherLimits: limits.byKey,
    maxCommandsInFlight: values.HERALD_MAX_COMMANDS_IN_FLIGHT as number,
    maxQueuedCommands: values.HERALD_MAX_QUEUED_COMMANDS as number,
    ackThroughWindow: values.HERALD_ACK_THROUGH_WINDOW as number,
    ackPoolSize: values.HERALD_ACK_POOL_SIZE as number,
    maxTopicsPerUser: values.HERALD_MAX_TOPICS_PER_USER as number,
    maxConnections: values.HERALD_MAX_CONNECTIONS as number,
    maxConnectionsPerUser: values.HERALD_MAX_CONNECTIONS_PER_USER as number,
    maxPendingHandshakes: values.HERALD_MAX_PENDING_HANDSHAKES as number,
    maxQueueAgeMs: values.HERALD_MAX_QUEUE_AGE_MS as number,
    listenBacklog: values.HERALD_LISTEN_BACKLOG as number,
    maxBufferedBytes: values.HERALD_MAX_BUFFERED_BYTES as number,
    clientFramesPerSecond: values.HERALD_CLIENT_FRAMES_PER_SECOND as number,
    clientFramesBurst: values.HERALD_CLIENT_FRAMES_BURST as number,
    heartbeatMs: values.HERALD_HEARTBEAT_MS as number,
    closeTimeoutMs: values.HERALD_CLOSE_TIMEOUT_MS as number,
    tokenMaxTtlSeconds: values.HERALD_TOKEN_MAX_TTL_SECONDS as number,
    ticketMintsPerMinute: values.HERALD_TICKET_MINTS_PER_MINUTE as number,
    presenceHeartbeatMs: values.HERALD_PRESENCE_HEARTBEAT_MS as number,
    sweepIntervalMs: values.HERALD_SWEEP_INTERVAL_MS as number,
    retentionMs: Math.round((values.HERALD_RETENTION_HOURS as number) * 3_600_000),
    idempotencyMs: Math.round((values.HERALD_IDEMPOTENCY_HOURS as number) * 3_600_000),
    userRetentionMs: Math.round((values.HERALD_USER_RETENTION_DAYS as number) * 86_400_000),
    inboxRetentionMs: Math.round((values.HERALD_INBOX_RETENTION_DAYS as number) * 86_400_000),
    webhooks: {
      allowedCidrs: values.HERALD_WEBHOOK_ALLOWED_CIDRS as string[],
      dnsServer: values.HERALD_WEBHOOK_DNS_SERVER as string,
      timeoutMs: values.HERALD_WEBHOOK_TIMEOUT_MS as number,
      concurrency: values.HERALD_WEBHOOK_CONCURRENCY as number,
      retryMs: values.HERALD_WEBHOOK_RETRY_MS as number,
      retryForMs: Math.round((values.HERALD_WEBHOOK_RETRY_HOURS as number) * 3_600_000),
      disableAfterMs: Math.round((values.HERALD_WEBHOOK_DISABLE_AFTER_HOURS as number) * 3_600_000),
    },
    redisPrefix: values.HERALD_REDIS_PREFIX as string,
    shutdownGraceMs: values.HERALD_SHUTDOWN_GRACE_MS as number,
    demoTokens: values.HERALD_DEMO_TOKENS as boolean,
    adminPassword: values.HERALD_ADMIN_PASSWORD as string,
    adminSessionTtlSeconds: values.HERALD_ADMIN_SESSION_TTL_SECONDS as number,
    adminLoginAttempts: values.HERALD_ADMIN_LOGIN_ATTEMPTS as number,
    logLevel: values.LOG_LEVEL as HeraldConfig['logLevel'],
    logFormat: values.LOG_FORMAT as HeraldConfig['logFormat'],
  };
}

function redisTargetOf(values: Record<string, unknown>): RedisTarget {
  const credentials = {
    username: values.REDIS_USERNAME as string,
    password: values.REDIS_PASSWORD as string,
    tls: values.REDIS_TLS as boolean,
  };
  const nodes = values.REDIS_CLUSTER_NODES as string[];
  if (nodes.length === 0) return { mode: 'single', url: values.REDIS_URL as string, ...credentials };
  return {
    mode: 'cluster',
    nodes: nodes.map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    }),
    ...credentials,
  };
}

/** Reads `process.env`; the one place in the service that does. */
export function loadConfig(): HeraldConfig {
  return parseConfig(process.env);
}
