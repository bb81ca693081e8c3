import type { Command } from 'commander';
import { registerConfigCommand } from './config.ts';
import { registerInstancesCommand } from './instances.ts';
import { registerMetadataProxyCommand } from './metadata-proxy.ts';
import { registerMirrorCommand } from './mirror.ts';
import { registerReleasesCommand } from './releases.ts';
import { registerServeCommand } from './serve.ts';
import { registerVerifyCommand } from './verify.ts';

/** Each command lives in its own module and adds itself here, so the CLI entry stays small. */
export function registerCommands(program: Command): void {
  void program;
  registerServeCommand(program);
  registerInstancesCommand(program);
  registerVerifyCommand(program);
  registerMirrorCommand(program);
  registerReleasesCommand(program);
  registerMetadataProxyCommand(program);
  registerConfigCommand(program);
}
