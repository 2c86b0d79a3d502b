/**
 * Two tiers (test/tiers/tiers.js): `unit` needs no server and runs in well under a minute
 * (`npm run test:unit`); `live` talks to real datastore servers started by the suite itself (see
 * test/support). `npm test` runs both.
 */
const { UNIT } = require('./test/tiers/tiers');

const unitFiles = UNIT.map((file) => `<rootDir>/test/${file}`);
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};

module.exports = {
  // Real servers (JVMs, replication set-up) need more than jest's 5 s default (a global option:
  // jest ignores it inside a project).
  testTimeout: 60000,
  // Two cores: two test files at a time keeps servers from starving each other.
  maxWorkers: 2,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: unitFiles,
      setupFilesAfterEnv: ['<rootDir>/test/tiers/unit-guard.ts'],
    },
    {
      ...common,
      displayName: 'live',
      // Every other test file, so a new file runs in `npm test` even before it is given a tier
      // (test/test-tiers.test.ts then fails until it is).
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        ...UNIT.map((file) => `/test/${file.replace(/\./g, '\\.')}$`),
      ],
    },
  ],
};
