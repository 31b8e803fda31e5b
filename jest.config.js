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
};
