// Where the stack runs from, and `require` for the CommonJS helpers in scripts/lib.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const require = createRequire(import.meta.url);
