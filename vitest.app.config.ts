import { defineConfig } from 'vitest/config';

// `npm run test:app`: the packed library installed into the fixture app (test/fixture-app.test.ts).
// Its own run because it packs and installs (about a minute); .ci/run runs it as a step of its own.
export default defineConfig({
  test: {
    include: ['test/fixture-app.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 240_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-app-results.json' },
  },
});
