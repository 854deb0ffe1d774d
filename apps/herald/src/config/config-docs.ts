import { CONFIG_VARIABLES } from './config-variables';

/**
 * docs/configuration.md, rendered from the schema so the two cannot drift
 * (`npm run docs:config` writes it; a unit test compares).
 */
export function renderConfigurationDoc(): string {
  const rows = Object.entries(CONFIG_VARIABLES).map(([name, spec]) => {
    const fallback =
      spec.default === undefined ? (name === 'REPLICA_ID' ? '_host-pid_' : '**required**') : `\`${spec.default}\``;
    return `| \`${name}\` | ${fallback} | ${spec.description.replace(/\|/g, '\\|')} |`;
  });
  return [
    '# Configuration',
    '',
    'Herald reads its configuration from environment variables once, at start-up, and refuses to start',
    '(exit code 78) with one line per bad or missing value. Values that are secrets are never echoed.',
    '',
    'This file is generated from `apps/herald/src/config/config-variables.ts` by `npm run docs:config`;',
    'a unit test fails when the two differ.',
    '',
    '| Variable | Default | Meaning |',
    '| --- | --- | --- |',
    ...rows,
    '',
    '## Notes',
    '',
    '- Durations are whole milliseconds (`_MS`) or seconds (`_SECONDS`); sizes are bytes.',
    '- Redelivery: send number _n_ is checked after `HERALD_ACK_TIMEOUT_MS` plus',
    '  `min(HERALD_REDELIVERY_MAX_BACKOFF_MS, HERALD_REDELIVERY_BACKOFF_MS × 2^(n−1))`, of which half is fixed and',
    '  half random (jitter). After `HERALD_REDELIVERY_MAX_ATTEMPTS` unacked sends to an online user the delivery ends',
    '  `failed`. Offline users are not retried; they get everything open on reconnect.',
    '- `HERALD_API_KEYS` keys are identified in logs and in the database by `pk_` and the first 12 hex digits of',
    '  their SHA-256, never in clear. Idempotency keys are scoped to that id.',
    '- Several deployments may share one Redis when each has its own `HERALD_REDIS_PREFIX`.',
    '',
  ].join('\n');
}
