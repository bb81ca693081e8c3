import { Command, CommanderError } from 'commander';
import { describeError, PermanentError } from '../shared/errors.ts';
import { registerCommands } from './commands/index.ts';

const program = new Command('cldist')
  .description('Mirror Container Linux releases, verified, and serve per-instance Ignition configs.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`cldist: ${describeError(error)}\n`);
    process.exitCode = error instanceof PermanentError ? 2 : 1;
  }
}
