#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npm ci` is the whole install: no build step to forget.
import { register } from 'tsx/esm/api';

// Local tools run on Node 20 on purpose (see README); the SDK's end-of-support notice is not for operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../local/cli.ts');
