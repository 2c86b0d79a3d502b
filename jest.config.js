/** Tests talk to real datastore servers started by the suite itself; see test/support. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Real servers (JVMs, replication set-up) need more than jest's 5 s default.
  testTimeout: 60000,
  // Two cores: two test files at a time keeps servers from starving each other.
  maxWorkers: 2,
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};
