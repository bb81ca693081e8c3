import { configDefaults, defineConfig } from 'vitest/config';

// The SDK's notice that Node 20 support ends in 2027 is printed once per test worker otherwise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const emulators = 'test/support/global-setup.ts';

/**
 * Left out of `npm run test:fast`, the edit loop: the end-to-end tests (whole `cldist` processes, the real
 * Ignition client, network namespaces, the browser test of the status page, the 30-second soak), the chaos
 * runs, the real esbuild bundling of the stack, and the deploy project (it synthesizes and bundles first).
 * `npm test` runs everything, as CI does.
 */
const slowTests = [
  'test/e2e/**/*.test.ts',
  'test/**/chaos*.test.ts',
  'test/chaos/**/*.test.ts',
  'test/cdk/bundling.test.ts',
];
const fast = process.env.CLDIST_TEST_FAST === '1';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'cldist',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/deploy/**', ...(fast ? slowTests : [])],
          globalSetup: [emulators],
        },
      },
      {
        // Its own project so the one-off synthesis (with bundling) runs only when a deploy test is selected.
        extends: true,
        test: {
          name: 'deploy',
          include: ['test/deploy/**/*.test.ts'],
          globalSetup: [emulators, 'test/deploy/global-setup.ts'],
        },
      },
    ],
  },
});
