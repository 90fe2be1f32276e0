import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/cluster needs the multi-node lab: vitest.cluster.config.ts (npm run test:cluster) runs it.
    exclude: ['test/cluster/**', '**/node_modules/**'],
    // Integration tests share one Docker engine: run files one at a time so their Swarm work does not contend.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
