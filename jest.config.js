/** Jest runs the TypeScript sources as ESM (client-node and zod are ESM only). */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: { ignoreCodes: [151001] } }],
  },
  testTimeout: 30000,
  // The lab runs its faults concurrently, one queue per node: all must be able to wait in their queue.
  maxConcurrency: 64,
  // Suites run in a worker that is replaced once it holds this much: a suite's servers, clients and heap
  // (~100 MB each, with jest's module registry) do not stay to slow the suites after it. Without it, jest
  // runs everything in its own process on a 2-CPU machine and the heap reached ~700 MB by the end.
  workerIdleMemoryLimit: '300MB',
};
