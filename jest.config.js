/** Three tiers, one runner: unit (beside the code), integration (in-process, PostgreSQL/Redis), e2e (replica processes). */
/** The packages the integration tier rewrites from ESM to CommonJS (by their path under node_modules). */
const ESM_ONLY = '(@nestjs|content-disposition)';
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.spec.json' }] };
const moduleNameMapper = {
  '^@herald/protocol$': '<rootDir>/libs/protocol/src',
  // ESM sources (libs/client) import siblings as './x.js'; under Jest they are the .ts files.
  '^(\\.{1,2}/.*)\\.js$': '$1',
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
      // The console's specs run under Vitest (ng test), with Angular's compiler.
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/apps/admin/'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
      // The app runs in-process here (test/helpers/in-process.ts): NestJS 12 is ESM only, and so is the
      // content-disposition of @fastify/static (the Swagger UI's files): rewritten to CommonJS.
      transform: { ...transform, [`/node_modules/${ESM_ONLY}/.+\\.js$`]: '<rootDir>/test/helpers/esm-to-cjs.js' },
      transformIgnorePatterns: [`^(?!.*/node_modules/${ESM_ONLY}/).*/node_modules/`],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      // The in-process apps' logs are copied to files (test/helpers/app-log.ts) and scanned for secrets too.
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      // Fails the run if any log written during it holds an API key, the token secret or a user token.
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
  testTimeout: 60_000,
};
