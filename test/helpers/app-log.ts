import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Replica id → the log file its lines are copied to. */
const files = new Map<string, string>();
const REPLICA = /"replica":"([^"]+)"/;
let installed = false;

/**
 * Copies every line an in-process app logs (it writes JSON lines to the Jest worker's stdout, which the
 * worker shares with everything else) to `$TMPDIR/herald-<label>-…/app.log`, as a replica process's log
 * goes to its own file: the end-of-run scan for secrets in logs (test/helpers/global-teardown.ts) reads
 * those files. Lines are picked by the replica id they carry. Returns the file.
 */
export function copyAppLog(replicaId: string, label: string): string {
  const file = join(mkdtempSync(join(tmpdir(), `herald-${label}-inproc-`)), 'app.log');
  files.set(replicaId, file);
  if (!installed) {
    installed = true;
    const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
    process.stdout.write = (chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      const target = files.get(REPLICA.exec(text)?.[1] ?? '');
      if (target) appendFileSync(target, text);
      return write(chunk, ...rest);
    };
  }
  return file;
}

/** Stops copying that app's lines (its file stays for the scan). */
export function stopCopyingAppLog(replicaId: string): void {
  files.delete(replicaId);
}
