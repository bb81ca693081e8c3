import type { Command } from 'commander';
import { registerServeCommand } from './serve.ts';

/** Each command lives in its own module and adds itself here, so the CLI entry stays small. */
export function registerCommands(program: Command): void {
  void program;
  registerServeCommand(program);
}
