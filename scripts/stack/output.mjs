// What the stack prints: timed steps, and failures before anything started.

const started = Date.now();
export function step(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[stack ${seconds}s] ${message}\n`);
}

/** A failure while starting: `up` stops what it started, then reports it. */
export class StackError extends Error {}

export function fail(message, showUsage = false) {
  process.stderr.write(`[stack] ${message}\n`);
  if (showUsage) process.stderr.write('run `node scripts/stack.mjs --help` for the options\n');
  process.exit(1);
}
