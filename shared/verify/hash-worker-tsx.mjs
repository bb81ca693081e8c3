// The hash thread's start from TypeScript sources (tests, `tsx`): a worker thread does not inherit the
// parent's tsx hooks, so it registers its own before loading hash-worker.ts. Bundles start the compiled
// hash-worker.mjs instead and never load this file.
const { register } = await import('tsx/esm/api');
register();
await import('./hash-worker.ts');
