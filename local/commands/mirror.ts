import { type Command, CommanderError } from 'commander';
import { ConfigError } from '../../shared/errors.ts';
import type { MirrorConfigFlags, MirrorProblem } from '../mirror-once.ts';
import type { Logger } from '../runtime/log.ts';

interface MirrorFlags extends MirrorConfigFlags {
  once: boolean;
  dataDir: string;
  json: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function describeProblem(problem: MirrorProblem): string {
  const where = [problem.source, problem.channel, problem.board, problem.version, problem.artifact]
    .filter((part) => part !== undefined)
    .join('/');
  return `${where}: ${problem.state}${problem.detail === undefined ? '' : ` (${problem.detail})`}`;
}

async function run(flags: MirrorFlags): Promise<void> {
  if (!flags.once) {
    throw new ConfigError('cldist mirror needs --once (to keep mirroring on a schedule, run cldist serve)');
  }
  // Loaded here, not at the top: every other command would otherwise pay the runner's start-up time.
  const [{ createTerminal }, { createLogger }, { mirrorConfigFromFlags, mirrorOnce }] = await Promise.all([
    import('../progress.ts'),
    import('../runtime/log.ts'),
    import('../mirror-once.ts'),
  ]);
  const config = await mirrorConfigFromFlags(flags);
  const tty = process.stdout.isTTY === true;
  const format = flags.json ? 'json' : 'pretty';
  let logger: Logger | undefined;
  const terminal = createTerminal({
    tty: tty && !flags.json,
    stream: process.stdout,
    logger: () => logger ?? createLogger({ format, write: () => {} }),
  });
  logger = createLogger({ format, write: terminal.writeLine });

  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.once('SIGINT', () => process.exit(130));
    logger?.info('shutdown.signal', { signal });
    interrupt.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await mirrorOnce({
      config,
      dataDir: flags.dataDir,
      logger,
      tracker: terminal.tracker,
      console: { format, writeLine: terminal.writeLine },
      signal: interrupt.signal,
      region: process.env.AWS_REGION,
    });
    logger.log(report.ok ? 'info' : 'error', 'mirror.done', {
      ok: report.ok,
      newReleases: report.newReleases.map((r) => `${r.source}/${r.channel}/${r.board}/${r.version}`),
      verifiedArtifacts: report.verifiedArtifacts,
      problems: report.problems,
      queueStarted: report.queueStarted,
    });
    if (!report.ok) {
      const lines = report.problems.map((problem) => `  ${describeProblem(problem)}`);
      if (report.interrupted) lines.push('  interrupted before the queue was empty');
      process.stderr.write(`cldist: mirror incomplete:\n${lines.join('\n')}\n`);
      process.exitCode = 1;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    terminal.stop();
  }
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
}

/** `cldist mirror --once`: one poll and a drained queue, for cron jobs and CI (see docs/single-machine.md). */
export function registerMirrorCommand(program: Command): void {
  program
    .command('mirror')
    .description(
      'Poll the configured channels once and mirror every new release, verified, into {data-dir}/mirror; ' +
        'exit 0 only if every required artifact ended verified, 1 otherwise (with a summary), 2 on a bad flag or config.',
    )
    .option('--once', 'poll once, mirror everything pending, then exit (required)', false)
    .option(
      '--config <file>',
      'JSON config file (default: built-in config mirroring the real Flatcar servers)',
    )
    .option(
      '--origin <url>',
      "base URL for every channel of every source instead of the config's, e.g. http://mirror.example/{channel}",
    )
    .option(
      '--channel <name>',
      'mirror this channel only (of every source that has it); repeat for several (default: all configured)',
      collect,
    )
    .option('--board <name>', 'mirror this board only (default: the configured boards)')
    .option(
      '--artifact <name>',
      "file to mirror per release, required; repeat for several; replaces every source's list",
      collect,
    )
    .option(
      '--keyring <file>',
      'ASCII-armored public key file whose primary keys are trusted; repeat for several (default: config keyring)',
      collect,
    )
    .option('--data-dir <dir>', 'ledger and mirror (in {data-dir}/mirror), kept across runs', './data')
    .option('--json', 'one JSON line per event on stdout, no progress bars', false)
    .exitOverride((error) => {
      // A usage error is a flag error: exit 2 like a bad flag value, not commander's 1.
      throw error.exitCode === 1 ? new CommanderError(2, error.code, error.message) : error;
    })
    .action((flags: MirrorFlags) => run(flags));
}
