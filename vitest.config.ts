import { configDefaults, defineConfig } from 'vitest/config';

// The SDK's notice that Node 20 support ends in 2027 is printed once per test worker otherwise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const emulators = 'test/support/global-setup.ts';

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
          exclude: [...configDefaults.exclude, 'test/deploy/**'],
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
