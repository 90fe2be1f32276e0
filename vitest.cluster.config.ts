import { defineConfig } from 'vitest/config';

// The multi-node suite (npm run test:cluster): needs scripts/cluster-lab.sh up, so `npm test` leaves it out.
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/cluster-global-setup.ts'],
  },
});
