import type { LoggerService } from '@nestjs/common';
import type { PresenceRepository, ReplicaBeat } from '../routing/presence.repository';
import { schemaTimestamp } from './data-source';

const POLL_MS = 250;

/** Replicas of another schema still beat presence: this build must not migrate or serve beside them. */
export class UpgradeFenceError extends Error {
  constructor(
    readonly replicas: ReplicaBeat[],
    readonly schema: string,
  ) {
    super(
      `replicas of another version still beat presence: ${replicas.map(described).join(', ')}; ` +
        `stop every one of them before starting this version (schema ${schema}); ` +
        'see docs/deployment.md, "Upgrading to the stream record"',
    );
    this.name = 'UpgradeFenceError';
  }
}

function described(beat: ReplicaBeat): string {
  return `${beat.replicaId} (${beat.schema === null ? 'no schema: before the stream record' : `schema ${beat.schema}`})`;
}

/** True when a replica beating `schema` may serve beside this build: its schema is at or above `floor`. */
export function sharesDatabase(schema: string | null, floor: string): boolean {
  return schema !== null && schemaTimestamp(schema) >= schemaTimestamp(floor);
}

/**
 * The upgrade fence (docs/adr/0008-upgrade-fence.md): resolves once every replica beating presence carries
 * a schema at or above `floor` (SHARED_SCHEMA_FLOOR). A replica stopped a moment ago leaves its beat for up
 * to one presence TTL, so the others are waited for that long (`waitMs`); still beating then, they are
 * named in the log and in the UpgradeFenceError thrown. A replica of the same schema (a rolling restart of
 * this version), or of a release that kept the floor, is no bar.
 */
export async function passUpgradeFence(
  presence: Pick<PresenceRepository, 'beats'>,
  options: { schema: string; floor: string; waitMs: number; pollMs?: number },
  logger: Pick<LoggerService, 'log' | 'warn' | 'error'>,
): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  let waited = false;
  for (;;) {
    const others = (await presence.beats()).filter((beat) => !sharesDatabase(beat.schema, options.floor));
    const replicas = others.map((beat) => ({ replicaId: beat.replicaId, schema: beat.schema }));
    if (others.length === 0) {
      if (waited)
        logger.log({ message: 'upgrade fence passed: no replica of another version beats', schema: options.schema });
      return;
    }
    if (Date.now() >= deadline) {
      logger.error({
        message: 'upgrade fence: replicas of another version still beat presence; not starting',
        replicas,
        schema: options.schema,
      });
      throw new UpgradeFenceError(others, options.schema);
    }
    if (!waited) {
      logger.warn({
        message: 'upgrade fence: waiting for replicas of another version to stop beating',
        replicas,
        schema: options.schema,
        waitMs: options.waitMs,
      });
      waited = true;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMs ?? POLL_MS, deadline - Date.now())));
  }
}
