import { Command, InvalidArgumentError, Option } from 'commander';
import { formatChaosReport, runChaos } from '../test/chaos/run.ts';

/**
 * The seeded chaos run of the release mirror: the same seed replays the same fault schedule.
 *
 *   npm run chaos -- --seed 1 --releases 20 [--store local|s3] [--disk-faults] [--quiet] [--json]
 *
 * Exits 1 when any invariant is violated, 2 on bad arguments.
 */
function positiveInteger(name: string, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < 1 || parsed > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}, not "${value}"`);
    }
    return parsed;
  };
}

const program = new Command('chaos')
  .description('Mirror seeded releases from the sim origin under random faults, then check every invariant.')
  .option('--seed <n>', 'seed of the fault schedule', positiveInteger('--seed', 2 ** 32 - 1), 1)
  .option('--releases <n>', 'releases to publish across 3 channels', positiveInteger('--releases', 200), 20)
  .addOption(
    new Option('--store <kind>', 'where the mirror writes').choices(['local', 's3']).default('local'),
  )
  .option('--disk-faults', 'also fill the ledger and mirror filesystems (small tmpfs mounts; needs root)')
  .option('--quiet', 'no progress lines while the run goes')
  .option('--json', 'print the report as JSON instead of text')
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

program.parse();
const options = program.opts<{
  seed: number;
  releases: number;
  store: 'local' | 's3';
  quiet?: boolean;
  json?: boolean;
  diskFaults?: boolean;
}>();
const report = await runChaos({
  seed: options.seed,
  releases: options.releases,
  store: options.store,
  diskFaults: options.diskFaults === true,
  log: options.quiet === true ? undefined : (line) => process.stderr.write(`  ${line}\n`),
});
process.stdout.write(
  `${options.json === true ? JSON.stringify(report, null, 2) : formatChaosReport(report)}\n`,
);
process.exitCode = report.passed ? 0 : 1;
