// Types of test-services.js, for the test that drives `npm test`'s set-up step.
export const DEFAULTS: { postgres: string; redis: string };
export const RUN_PREFIX: string;
export const TOOLS: string[];

export interface TestServices {
  env: { TEST_POSTGRES_URL: string; TEST_REDIS_URL: string };
  stop(): Promise<void>;
}

export function ensureTestTools(options?: { path?: string; log?: (line: string) => void }): void;
export function prepareTestServices(options?: {
  env?: Record<string, string | undefined>;
  privateServices?: boolean;
  defaults?: { postgres: string; redis: string };
  path?: string;
  tmp?: string;
  log?: (line: string) => void;
}): Promise<TestServices>;
/** null when the server at `url` answers (a query, a PING), else why not. */
export function postgresProblem(url: string): Promise<string | null>;
export function redisProblem(url: string): Promise<string | null>;
export function removeLeftovers(options?: { tmp?: string; log?: (line: string) => void }): Promise<void>;
