import { z } from 'zod';
import { publisherKeyId } from '../auth/publisher-key-id';
import { int, list, VariableSpec } from './variable';

/** What one publisher key may publish: a token bucket of notifications and one of recipients. */
export interface PublisherLimits {
  /** Notifications per second, sustained. */
  perSecond: number;
  /** Notifications at once above the rate (the bucket's size). */
  burst: number;
  /** Recipients per minute, counted from each publish's resolved audience. */
  recipientsPerMinute: number;
}

const MAX_RATE = 10_000_000;
const MAX_RECIPIENTS_PER_MINUTE = 1_000_000_000_000;

const OVERRIDE = /^(pk_[0-9a-f]{12})=(\d+)\/(\d+)\/(\d+)$/;

export const PUBLISHER_LIMIT_VARIABLES = {
  HERALD_PUBLISH_RATE: {
    schema: int(1, MAX_RATE),
    default: '100',
    description:
      'Notifications per second each publisher key may publish, sustained (a token bucket shared by all replicas in Redis). Over it, a publish is refused with 429 RATE_LIMITED and stores nothing.',
  },
  HERALD_PUBLISH_BURST: {
    schema: int(1, MAX_RATE),
    default: '200',
    description: 'Notifications a publisher key may publish at once above HERALD_PUBLISH_RATE (the bucket size).',
  },
  HERALD_PUBLISH_RECIPIENTS_PER_MINUTE: {
    schema: int(1, MAX_RECIPIENTS_PER_MINUTE),
    default: '1000000',
    description:
      'Recipients per minute each publisher key may reach, counted from the resolved audience of each publish (a user list, a topic\u2019s subscribers, everyone) inside its transaction. A publish that would pass it is rolled back and refused with 429.',
  },
  HERALD_PUBLISHER_LIMITS: {
    schema: list.pipe(
      z.array(
        z
          .string()
          .regex(OVERRIDE, 'each entry must be pk_<12 hex digits>=<per second>/<burst>/<recipients per minute>'),
      ),
    ),
    default: '',
    description:
      'Per-key exceptions to the three limits above, comma-separated `pk_<id>=<per second>/<burst>/<recipients per minute>` (the key id is `pk_` and the first 12 hex digits of the key\u2019s SHA-256, as logged). Empty: every key gets the defaults.',
  },
} satisfies Record<string, VariableSpec>;

/**
 * The limits of every configured key: the defaults, or its entry of HERALD_PUBLISHER_LIMITS. Appends to
 * `problems` a line for each entry that names no configured key, repeats one, or has a zero.
 */
export function publisherLimitsOf(
  values: Record<string, unknown>,
  apiKeys: string[],
  problems: string[],
): { defaults: PublisherLimits; byKey: Record<string, PublisherLimits> } {
  const defaults: PublisherLimits = {
    perSecond: values.HERALD_PUBLISH_RATE as number,
    burst: values.HERALD_PUBLISH_BURST as number,
    recipientsPerMinute: values.HERALD_PUBLISH_RECIPIENTS_PER_MINUTE as number,
  };
  const known = new Set(apiKeys.map(publisherKeyId));
  const byKey: Record<string, PublisherLimits> = {};
  for (const entry of values.HERALD_PUBLISHER_LIMITS as string[]) {
    const [, keyId, perSecond, burst, recipients] = OVERRIDE.exec(entry)!;
    const limits = { perSecond: Number(perSecond), burst: Number(burst), recipientsPerMinute: Number(recipients) };
    if (!known.has(keyId!)) {
      problems.push(`HERALD_PUBLISHER_LIMITS names ${keyId}, which is the id of no key in HERALD_API_KEYS`);
    } else if (byKey[keyId!]) {
      problems.push(`HERALD_PUBLISHER_LIMITS names ${keyId} twice`);
    } else if (
      !(limits.perSecond >= 1 && limits.perSecond <= MAX_RATE) ||
      !(limits.burst >= 1 && limits.burst <= MAX_RATE) ||
      !(limits.recipientsPerMinute >= 1 && limits.recipientsPerMinute <= MAX_RECIPIENTS_PER_MINUTE)
    ) {
      problems.push(
        `HERALD_PUBLISHER_LIMITS entry ${entry}: each number must be at least 1 (rate and burst at most ${MAX_RATE}, recipients at most ${MAX_RECIPIENTS_PER_MINUTE})`,
      );
    } else {
      byKey[keyId!] = limits;
    }
  }
  return { defaults, byKey };
}
