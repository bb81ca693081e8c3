#!/usr/bin/env node
// Starts the precompiled bundle in dist/ (built by `npm ci`, rebuilt here when a source is newer), so no
// TypeScript is transpiled at start; when the bundle cannot be built it runs the sources through tsx.
import { buildBundle, freshEntry } from './cli-bundle.mjs';

// Local tools run on Node 20 on purpose (see README); the SDK's end-of-support notice is not for operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let entry = freshEntry();
if (entry === undefined) {
  try {
    entry = await buildBundle();
  } catch {
    // dist/ not writable, or a source esbuild refuses: tsx runs the sources, and reports any error there.
    entry = undefined;
  }
}
if (entry === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../local/cli.ts');
} else {
  await import(entry);
}
