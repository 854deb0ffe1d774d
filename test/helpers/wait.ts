/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * A paced loop: runs `step` every `intervalMs` until `done()` holds, for at most `timeoutMs` (publishing one
 * now and then while something else happens). An error thrown by `step` ends the loop at once, thrown.
 */
export async function repeatUntil(
  what: string,
  done: () => boolean,
  step: () => Promise<unknown>,
  timeoutMs: number,
  intervalMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await step();
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The longest interval `holdFor` waits: a test that needs longer waits on a condition instead. */
const LONGEST_HOLD_MS = 70_000;

/**
 * Waits a bounded, named interval. Only for what no condition can show: that something does NOT happen
 * within it (no second delivery, no close), or that a budget refills (a rate limit's bucket, a time
 * window). `what` names the interval, so a reader sees why the test waits; anything else uses `waitFor`.
 */
export function holdFor(what: string, ms: number): Promise<void> {
  if (!what || !(ms > 0 && ms <= LONGEST_HOLD_MS)) {
    throw new Error(`holdFor('${what}', ${ms}): an interval needs a name and 0 < ms <= ${LONGEST_HOLD_MS}`);
  }
  return new Promise((resolve) => setTimeout(resolve, ms));
}
