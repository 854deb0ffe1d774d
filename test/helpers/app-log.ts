import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogStreams } from '../../apps/herald/src/common/logging';

/** An in-process app's log file, and the streams its logger writes to. */
export interface AppLog {
  file: string;
  streams: LogStreams;
}

/**
 * Where an in-process app logs: `$TMPDIR/herald-<label>-inproc-…/app.log`, as a replica process's log goes
 * to its own file, so the end-of-run scan for secrets in logs (test/helpers/global-teardown.ts) reads it too.
 * Each line is also written to the Jest process's stdout or stderr, unless `echo` is false (an app that logs
 * at `log` level, whose lines would flood the run's output). The app takes the streams through
 * `createApp`/`createLogger`: its logger writes to file descriptors itself, past `process.stdout`.
 */
export function appLog(label: string, echo = true): AppLog {
  const file = join(mkdtempSync(join(tmpdir(), `herald-${label}-inproc-`)), 'app.log');
  const to = (terminal: NodeJS.WriteStream) => ({
    write(line: string): void {
      appendFileSync(file, line);
      if (echo) terminal.write(line);
    },
  });
  return { file, streams: { out: to(process.stdout), err: to(process.stderr) } };
}
