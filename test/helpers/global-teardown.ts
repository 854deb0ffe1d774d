import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_ADMIN_PASSWORD, TEST_API_KEY, TEST_JWT_SECRET } from './replica';

/** A signed JWT (header.payload.signature, base64url): what a user token looks like in a log. */
const JWT = /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/;

/** Undefined when the path is gone: a folder of another test may vanish while this one looks. */
function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function logFiles(dir: string, since: number, depth = 0): string[] {
  const found: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && depth < 3) found.push(...logFiles(path, since, depth + 1));
    else if (entry.isFile() && entry.name.endsWith('.log') && (mtime(path) ?? 0) >= since) found.push(path);
  }
  return found;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * After the whole run: no log line that any replica or Nginx wrote during it
 * may contain the publisher API key, the token secret, the admin password, or
 * a token (user or admin session).
 */
export default async function globalTeardown(): Promise<void> {
  const since = (globalThis as { heraldRunStartedAt?: number }).heraldRunStartedAt ?? Date.now();
  const roots = readdirSync(tmpdir())
    .filter((name) => name.startsWith('herald-'))
    .map((name) => join(tmpdir(), name))
    .filter((path) => (mtime(path) ?? 0) >= since - 60_000);
  const leaks: string[] = [];
  let scanned = 0;
  for (const root of roots) {
    for (const file of logFiles(root, since)) {
      scanned += 1;
      readOrEmpty(file)
        .split('\n')
        .forEach((line, index) => {
          const what = line.includes(TEST_API_KEY)
            ? 'the API key'
            : line.includes(TEST_JWT_SECRET)
              ? 'the token secret'
              : line.includes(TEST_ADMIN_PASSWORD)
                ? 'the admin password'
                : JWT.test(line)
                  ? 'a token (user or admin session)'
                  : null;
          if (what) leaks.push(`${file}:${index + 1} contains ${what}: ${line.slice(0, 200)}`);
        });
    }
  }
  // Runs of files that start no replica (compose, say) have nothing to scan; say so rather than pass silently.
  if (scanned === 0) process.stderr.write('log scan: no log file was written by this run, nothing to check\n');
  if (leaks.length > 0) throw new Error(`Secrets in logs written by this run:\n  ${leaks.slice(0, 20).join('\n  ')}`);
}
