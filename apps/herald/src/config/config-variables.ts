import { BlockList, isIP } from 'node:net';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { decimal, int, list, url, VariableSpec } from './variable';
import { PUBLISHER_LIMIT_VARIABLES } from './publisher-limits.config';

/**
 * Every environment variable Herald reads, with its default and a one-line
 * description. `config.schema.ts` parses them (its `loadConfig` is the only
 * place that looks at `process.env`); `docs/configuration.md` lists the same
 * table (`npm run docs:config`).
 */

/** `address/prefix`, IPv4 or IPv6. */
function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(prefix ?? '')) return false;
  try {
    new BlockList().addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}

export const CONFIG_VARIABLES = {
  PORT: { schema: int(1, 65535), default: '3000', description: 'HTTP and WebSocket port of this replica.' },
  HOST: {
    schema: z
      .string()
      .trim()
      .refine((value) => value === '' || isIP(value) !== 0, 'must be an IP address such as 127.0.0.1, or empty'),
    default: '',
    description:
      'Address this replica listens on; empty listens on every interface. Behind a local proxy, `127.0.0.1` keeps the replica unreachable except through it.',
  },
  DATABASE_URL: {
    schema: url(['postgres:', 'postgresql:']),
    default: 'postgres://postgres@127.0.0.1:5432/herald',
    description: 'PostgreSQL connection URL (the record of every notification and delivery).',
    secret: true,
  },
  REDIS_URL: {
    schema: url(['redis:', 'rediss:']),
    default: 'redis://127.0.0.1:6379',
    description:
      'Redis connection URL (pub/sub between replicas, presence, BullMQ queues). Leave it empty to run on a Redis Cluster (`REDIS_CLUSTER_NODES`).',
    secret: true,
  },
  REDIS_CLUSTER_NODES: {
    schema: list.pipe(
      z.array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'each node must be host:port, such as 10.0.0.5:6379')),
    ),
    default: '',
    description:
      'Comma-separated `host:port` of some Redis Cluster nodes (Redis 7 or later): Herald then runs on the cluster, with sharded pub/sub between replicas, and `REDIS_URL` must be empty. Empty: one Redis at `REDIS_URL`.',
  },
  REDIS_USERNAME: {
    schema: z.string(),
    default: '',
    description: 'Redis ACL user name, for `REDIS_URL` and `REDIS_CLUSTER_NODES` alike (one in `REDIS_URL` wins).',
  },
  REDIS_PASSWORD: {
    schema: z.string(),
    default: '',
    description: 'Redis password, for `REDIS_URL` and `REDIS_CLUSTER_NODES` alike (one in `REDIS_URL` wins).',
    secret: true,
  },
  REDIS_TLS: {
    schema: z.enum(['true', 'false'], { message: 'must be true or false' }).transform((value) => value === 'true'),
    default: 'false',
    description:
      'Connect to Redis over TLS, for `REDIS_URL` and `REDIS_CLUSTER_NODES` alike (`rediss://` turns it on too).',
  },
  REPLICA_ID: {
    schema: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ . -'),
    default: undefined,
    description: 'Name of this replica in logs and presence. Default: host name and process id.',
  },
  HERALD_API_KEYS: {
    schema: list.pipe(
      z
        .array(z.string().min(16, 'each key must be at least 16 characters'))
        .min(1, 'must list at least one publisher key (comma-separated)'),
    ),
    default: undefined,
    description: 'Comma-separated publisher API keys, sent as `Authorization: Bearer <key>`. Required.',
    secret: true,
  },
  HERALD_JWT_SECRET: {
    schema: z.string().min(32, 'must be at least 32 characters'),
    default: undefined,
    description: 'HS256 secret that signs and verifies user tokens. Required.',
    secret: true,
  },
  HERALD_ALLOWED_ORIGINS: {
    schema: list.pipe(
      z.array(
        z.string().refine((value) => value === '*' || /^https?:\/\/[^/\s]+$/.test(value), {
          message: 'each entry must be * or an origin such as https://app.example.com (scheme, host, optional port)',
        }),
      ),
    ),
    default: '*',
    description:
      'Comma-separated browser origins allowed to open /ws, matched exactly; `*` allows any. Requests without an Origin header (non-browser clients) are always allowed.',
  },
  HERALD_TRUSTED_PROXIES: {
    schema: list.pipe(
      z.array(
        z.string().refine(
          (value) => {
            try {
              proxyaddr.compile(value);
              return true;
            } catch {
              return false;
            }
          },
          { message: 'each entry must be an IP address, a CIDR range, or loopback / linklocal / uniquelocal' },
        ),
      ),
    ),
    default: '',
    description:
      'Comma-separated addresses or CIDR ranges of the reverse proxies in front of this replica (for example `127.0.0.1` or `172.28.0.0/16`). Only requests from these may set the client address with `X-Forwarded-For` and the scheme with `X-Forwarded-Proto`; empty trusts nobody.',
  },
  HERALD_ACK_TIMEOUT_MS: {
    schema: int(50, 3_600_000),
    default: '10000',
    description: 'How long a sent notification waits for its ack before the first redelivery.',
  },
  HERALD_REDELIVERY_BACKOFF_MS: {
    schema: int(10, 3_600_000),
    default: '1000',
    description: 'Base of the exponential backoff added between redeliveries (doubles per attempt, with jitter).',
  },
  HERALD_REDELIVERY_MAX_BACKOFF_MS: {
    schema: int(10, 86_400_000),
    default: '60000',
    description: 'Cap of the redelivery backoff.',
  },
  HERALD_REDELIVERY_MAX_ATTEMPTS: {
    schema: int(1, 1000),
    default: '5',
    description: 'Sends to an online user before an unacked delivery ends `failed`.',
  },
  HERALD_DEFAULT_TTL_SECONDS: {
    schema: int(1, 31_536_000),
    default: '86400',
    description: 'TTL of a notification published without `ttlSeconds`.',
  },
  HERALD_MAX_TTL_SECONDS: {
    schema: int(1, 31_536_000),
    default: '2592000',
    description: 'Largest `ttlSeconds` a publisher may ask for (default 30 days).',
  },
  HERALD_MAX_MESSAGE_BYTES: {
    schema: int(256, 16_777_216),
    default: '65536',
    description: 'Largest WebSocket message accepted from a client; larger ones close the socket with 1009.',
  },
  HERALD_MAX_PAYLOAD_BYTES: {
    schema: int(2, 16_777_216),
    default: '65536',
    description: 'Largest notification payload (serialized JSON) a publisher may send; larger ones get 413.',
  },
  HERALD_MAX_BODY_BYTES: {
    schema: int(1024, 67_108_864),
    default: '262144',
    description: 'Largest REST request body; larger ones get 413.',
  },
  HERALD_MAX_RECIPIENTS: {
    schema: int(1, 1_000_000),
    default: '10000',
    description: 'Most user ids in one `to.users` list.',
  },
  ...PUBLISHER_LIMIT_VARIABLES,
  HERALD_MAX_COMMANDS_IN_FLIGHT: {
    schema: int(1, 1000),
    default: '4',
    description:
      'Subscribes and unsubscribes one connection may have running against the store at once (acks are written in batches, see HERALD_MAX_QUEUED_COMMANDS).',
  },
  HERALD_MAX_QUEUED_COMMANDS: {
    schema: int(0, 1_000_000),
    default: '1000',
    description:
      'Further commands a connection may have waiting, and acks it may have being written; beyond, each gets an error RATE_LIMITED.',
  },
  HERALD_ACK_THROUGH_WINDOW: {
    schema: int(0, 100_000),
    default: '1000',
    description:
      'Unacked notifications one WebSocket connection remembers in send order, for acks with `through`; older ones are acked by id. 0 turns the feature off.',
  },
  HERALD_ACK_POOL_SIZE: {
    schema: int(1, 100),
    default: '4',
    description:
      'PostgreSQL connections of the pool that writes acks and sent-marks with synchronous_commit off (a commit lost in a PostgreSQL crash is a redelivery, never a loss).',
  },
  HERALD_MAX_TOPICS_PER_USER: {
    schema: int(1, 100_000),
    default: '100',
    description: 'Topics one user may be subscribed to.',
  },
  HERALD_MAX_CONNECTIONS: {
    schema: int(1, 1_000_000),
    default: '15000',
    description:
      "Connections (WebSocket and SSE) one replica holds at most; beyond, new ones get 503 with Retry-After before the upgrade. Keep it below the process's open-file limit.",
  },
  HERALD_MAX_PENDING_HANDSHAKES: {
    schema: int(1, 100_000),
    default: '128',
    description:
      'WebSocket upgrades and SSE streams one replica sets up at once (token or ticket check, subscription, presence, user record, the first replay read). One more while they run is shed: a WebSocket is accepted and closed with 1013 `retry after <n> ms`, a stream answered 503 with Retry-After, the delay spreading the retries at the rate the replica sets connections up. /health/ready stays 200 while it sheds.',
  },
  HERALD_MAX_QUEUE_AGE_MS: {
    schema: int(0, 600_000),
    default: '8000',
    description:
      "A WebSocket upgrade or SSE stream request that waited longer than this between the proxy and the replica (its `X-Request-Start`, which the bundled Nginx stamps) is turned away before any work, as a shed one is (1013 `retry after <n> ms`, or 503 with Retry-After): its client has most likely given up (the SDK waits 10 s for a `welcome`), and setting it up would only delay the clients still waiting. 0: off. Only a stamp from `HERALD_TRUSTED_PROXIES` counts. The proxy's and the replicas' clocks must be in step (NTP); an age below 0 or over 10 minutes is ignored, and so are stamps that stay past the bound while the replica keeps up (a proxy clock behind).",
  },
  HERALD_LISTEN_BACKLOG: {
    schema: int(1, 65_535),
    default: '4096',
    description:
      "Connections the kernel queues for this replica before it accepts them (listen(2)'s backlog; Linux caps it at net.core.somaxconn). Node's own default, 511, overflows when a proxy restart sends thousands of reconnects at once: the dropped connects time out at the proxy, which then marks the replica down (ADR 0013).",
  },
  HERALD_MAX_CONNECTIONS_PER_USER: {
    schema: int(1, 10_000),
    default: '20',
    description:
      'Connections one user may hold across all replicas; one more is closed with 1008 `too many connections for this user`.',
  },
  HERALD_MAX_BUFFERED_BYTES: {
    schema: int(65_536, 1_073_741_824),
    default: '4194304',
    description:
      "Bytes a connection may leave unread in its send buffer (a slow reader) for a second, four times that at any moment (at least twice HERALD_MAX_PAYLOAD_BYTES); beyond, it is cut off (terminated) so it cannot hold the replica's memory or slow other clients. What it missed is replayed when it reconnects.",
  },
  HERALD_CLIENT_FRAMES_PER_SECOND: {
    schema: int(1, 1_000_000),
    default: '50',
    description:
      'Frames per second a client may send on one connection, on average (acks of notifications sent to it, and its first 1000 acks, are not counted); beyond, each frame is answered RATE_LIMITED.',
  },
  HERALD_CLIENT_FRAMES_BURST: {
    schema: int(1, 1_000_000),
    default: '200',
    description:
      'Frames a client may send at once above HERALD_CLIENT_FRAMES_PER_SECOND. A connection that keeps sending after this many of its frames were refused (net of the rate) is closed with 1008.',
  },
  HERALD_HEARTBEAT_MS: {
    schema: int(100, 600_000),
    default: '25000',
    description: 'WebSocket ping interval; a peer that has not answered one ping by the next is terminated.',
  },
  HERALD_CLOSE_TIMEOUT_MS: {
    schema: int(100, 600_000),
    default: '5000',
    description:
      "How long a WebSocket peer has to answer the server's close frame; one that does not is dropped (its TCP socket destroyed) then, so it holds no slot of HERALD_MAX_CONNECTIONS.",
  },
  HERALD_TICKET_MINTS_PER_MINUTE: {
    schema: int(1, 100_000),
    default: '60',
    description:
      'Connection tickets (POST /v1/tickets, POST /admin/api/tickets) one user, or the admin console, may mint per minute, across replicas; beyond, 429 with Retry-After.',
  },
  HERALD_TOKEN_MAX_TTL_SECONDS: {
    schema: int(1, 31_536_000),
    default: '604800',
    description: 'Longest user token that POST /v1/tokens mints (default 7 days).',
  },
  HERALD_PRESENCE_HEARTBEAT_MS: {
    schema: int(100, 600_000),
    default: '5000',
    description: 'How often a replica refreshes its presence in Redis; its entries expire after three missed beats.',
  },
  HERALD_SWEEP_INTERVAL_MS: {
    schema: int(100, 3_600_000),
    default: '5000',
    description:
      'How often the sweep expires stale deliveries, settles replay checks, and re-routes deliveries whose check is overdue: sends to over 100 recipients on a replica, and checks lost with their replica.',
  },
  HERALD_RETENTION_HOURS: {
    schema: decimal(0.0003, 87_600),
    default: '168',
    description:
      'How long a notification stays in PostgreSQL after it is final (every recipient acked or failed, or its TTL passed); decimals allowed (`0.0167`: a minute). Retention drops whole partitions, each about a twelfth of this wide.',
  },
  HERALD_IDEMPOTENCY_HOURS: {
    schema: decimal(0.0003, 87_600),
    default: '24',
    description:
      'How long an `Idempotency-Key` is remembered (at most as long as its notification is kept); a key sent again later publishes anew.',
  },
  HERALD_USER_RETENTION_DAYS: {
    schema: decimal(0, 36_500),
    default: '0',
    description:
      'Remove a user not seen for this many days (and never before HERALD_INBOX_RETENTION_DAYS, while their inbox may still list something), with no topic subscription and nothing still to deliver; 0 keeps every user. See docs/reliability.md for what a returning user misses.',
  },
  HERALD_INBOX_RETENTION_DAYS: {
    schema: decimal(0, 3650),
    default: '30',
    description:
      "How long a notification stays listed in its users' inboxes (GET /v1/me/notifications), from publish and whatever its delivery state; retention keeps it at least as long. 0 turns the inbox off (its endpoints answer 404, and no connection gets the `inbox` feature).",
  },
  HERALD_WEBHOOK_ALLOWED_CIDRS: {
    schema: list.pipe(
      z.array(
        z.string().refine(isCidr, { message: 'each entry must be a CIDR range such as 10.1.0.0/16 or fd00::/8' }),
      ),
    ),
    default: '',
    description:
      'Comma-separated address ranges that webhook endpoints and callback URLs may resolve to although they are loopback, private (RFC 1918, fc00::/7), link-local, carrier-grade NAT, unspecified or multicast, which are refused by default (docs/webhooks.md). Empty: only public addresses.',
  },
  HERALD_WEBHOOK_DNS_SERVER: {
    schema: z
      .string()
      .trim()
      .regex(/^$|^[0-9.]+:\d{1,5}$/, 'must be empty or an IPv4 address and port, such as 10.0.0.2:53'),
    default: '',
    description:
      "The DNS server (`ip:port`) webhook targets are resolved with; empty: the system's resolver (`/etc/hosts` and its servers). Every resolved address is checked at connect time.",
  },
  HERALD_WEBHOOK_TIMEOUT_MS: {
    schema: int(100, 60_000),
    default: '10000',
    description:
      'How long one webhook request may take, connect to answer, before it counts as failed (and is retried).',
  },
  HERALD_WEBHOOK_CONCURRENCY: {
    schema: int(1, 256),
    default: '16',
    description: 'Webhook requests one replica makes at once.',
  },
  HERALD_WEBHOOK_RETRY_MS: {
    schema: int(10, 3_600_000),
    default: '5000',
    description:
      'Delay before the first retry of a failed webhook request; each next one waits 4 times longer (with jitter), at most 4 hours, until HERALD_WEBHOOK_RETRY_HOURS.',
  },
  HERALD_WEBHOOK_RETRY_HOURS: {
    schema: decimal(0.0001, 168),
    default: '24',
    description: 'How long a webhook message is retried from when it was made; then it is given up (failed).',
  },
  HERALD_WEBHOOK_DISABLE_AFTER_HOURS: {
    schema: decimal(0.0001, 168),
    default: '24',
    description:
      'An endpoint whose requests have all failed for this long is disabled, with the reason shown to its publisher and in the console; enabling it again sends what it kept.',
  },
  HERALD_REDIS_PREFIX: {
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ . -'),
    default: 'herald',
    description: 'Prefix of every Redis key, channel and BullMQ queue, so several deployments can share a Redis.',
  },
  HERALD_SHUTDOWN_GRACE_MS: {
    schema: int(0, 600_000),
    default: '10000',
    description: 'On SIGTERM, how long to wait for in-flight acks and jobs before exiting.',
  },
  HERALD_ADMIN_PASSWORD: {
    schema: z.string().refine((value) => value === '' || value.length >= 12, 'must be at least 12 characters'),
    default: '',
    description:
      'Password of the admin console and its API (/admin/api/); empty turns the admin API off (every call answers 503).',
    secret: true,
  },
  HERALD_ADMIN_SESSION_TTL_SECONDS: {
    schema: int(60, 604_800),
    default: '28800',
    description: 'How long an admin session (the token POST /admin/api/login returns) lasts.',
  },
  HERALD_ADMIN_LOGIN_ATTEMPTS: {
    schema: int(1, 1000),
    default: '5',
    description: 'Wrong admin passwords allowed per client address per minute, across replicas; beyond, 429.',
  },
  HERALD_DEMO_TOKENS: {
    schema: z.enum(['true', 'false'], { message: 'must be true or false' }).transform((value) => value === 'true'),
    default: 'false',
    description:
      'Turns on POST /v1/demo/tokens, which mints a user token for anyone who asks (the demo page at /demo/ uses it). Never in production.',
  },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose']),
    default: 'log',
    description: 'Lowest log level printed: fatal, error, warn, log, debug or verbose.',
  },
  LOG_FORMAT: {
    schema: z.enum(['json', 'text']),
    default: 'json',
    description: 'json (one object per line) or text (colourless, for a terminal).',
  },
} satisfies Record<string, VariableSpec>;
