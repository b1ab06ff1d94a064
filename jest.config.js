// Tests assert on behaviour, not on log lines: keep the output readable (a test that checks logs sets its own level).
process.env.NI_LOG_LEVEL ??= 'ERROR';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    // @middy/core ships ES modules only; jest's module system loads CommonJS.
    '^.+/node_modules/@middy/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  testTimeout: 30000,
  maxWorkers: 2,
  // A worker whose files are done holds nothing open and starts exiting at once, but Node then frees its heap (a few
  // hundred MB after dozens of files), which takes 300-450 ms on an idle 2-core machine and more on a busy one: past
  // jest's default 500 ms, jest kills it and reports a leak that is not there. A real leak still shows after 3 s.
  workerGracefulExitTimeout: 3000,
};
