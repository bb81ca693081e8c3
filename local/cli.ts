import { Command, CommanderError } from 'commander';
import { describeError, PermanentError } from '../shared/errors.ts';
import { SignatureError } from '../shared/verify/types.ts';
import { registerCommands } from './commands/index.ts';

const program = new Command('cldist')
  .description('Mirror Container Linux releases, verified, and serve per-instance Ignition configs.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

await registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; every other commander error is a usage error.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`cldist: ${describeError(error)}\n`);
    // 1: the check failed (a refused signature) or something broke; 2: the command was used wrongly.
    process.exitCode = error instanceof PermanentError && !(error instanceof SignatureError) ? 2 : 1;
  }
}
