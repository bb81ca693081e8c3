#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npm ci` is the whole install: no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../local/cli.ts');
