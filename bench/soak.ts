import { parseArgs } from 'node:util';
import { runSoak, type SoakOptions, type SoakReport } from '../test/support/soak.ts';

/**
 * The soak from the command line: `runSoak` (test/support/soak.ts, which CI also runs for 30 s at a fixed
 * rate) plus the saturating wrk measurement and a 10-minute default.
 *
 *   npm run soak -- [--minutes 10] [--fraction 0.7] [--rate N] [--saturate-seconds 15]
 *                   [--interval-seconds 60] [--connections 32]
 *
 * `--rate` skips the saturating run. Exit 1 on any error or on memory growth past +15 % / +32 MiB (the
 * larger) from the second interval to the last.
 */

const MiB = 1024 * 1024;

function summary(report: SoakReport, options: SoakOptions): string {
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const first = report.intervals[Math.min(1, report.intervals.length - 1)];
  const last = report.intervals.at(-1);
  const { saturation } = report;
  const rows: Array<[string, string]> = [];
  if (saturation !== undefined) {
    rows.push(['max throughput (wrk, saturated)', `${saturation.requestsPerSecond.toFixed(0)} req/s`]);
  }
  const share = saturation === undefined ? '' : ` (${(options.fraction * 100).toFixed(0)}% of max)`;
  rows.push(
    ['soak rate', `${report.rate} req/s${share}`],
    ['duration', `${options.durationSeconds} s`],
    ['requests completed / scheduled', `${report.completed} / ${report.scheduled}`],
    ['errors (non-200, socket, unanswered)', String(report.errors)],
    ['server api.internal_error lines', String(report.serverInternalErrors)],
    [
      'latency p50 / p99 / max (from due time)',
      `${report.p50Ms.toFixed(2)} / ${report.p99Ms.toFixed(2)} / ${report.maxMs.toFixed(2)} ms`,
    ],
    ['worst interval p99', `${Math.max(...report.intervals.map((i) => i.p99Ms)).toFixed(2)} ms`],
    [
      'RSS before / interval 2 / last',
      `${mib(report.memoryBaseline.rssBytes)} / ${first ? mib(first.rssBytes) : '-'} / ${last ? mib(last.rssBytes) : '-'}`,
    ],
    [
      'anonymous RSS before / interval 2 / last',
      `${report.memoryBaseline.rssAnonBytes === undefined ? '-' : mib(report.memoryBaseline.rssAnonBytes)} / ${first?.rssAnonBytes === undefined ? '-' : mib(first.rssAnonBytes)} / ${last?.rssAnonBytes === undefined ? '-' : mib(last.rssAnonBytes)}`,
    ],
    [
      'heap after GC before / interval 2 / last',
      `${mib(report.memoryBaseline.heapUsedBytes)} / ${first ? mib(first.heapUsedBytes) : '-'} / ${last ? mib(last.heapUsedBytes) : '-'}`,
    ],
    ['verdict', report.failures.length === 0 ? 'PASS' : `FAIL: ${report.failures.join('; ')}`],
  );
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      fraction: { type: 'string', default: '0.7' },
      rate: { type: 'string' },
      'saturate-seconds': { type: 'string', default: '15' },
      'interval-seconds': { type: 'string', default: '60' },
      connections: { type: 'string', default: '32' },
    },
  });
  const number = (name: string, value: string | undefined, check: (n: number) => boolean) => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || !check(n)) {
      throw new Error(
        `--${name} must be a positive number${name === 'fraction' ? ' at most 1' : ''}, got ${value}`,
      );
    }
    return n;
  };
  const options: SoakOptions = {
    durationSeconds: number('minutes', values.minutes, (n) => n > 0 && n <= 24 * 60) * 60,
    intervalSeconds: number('interval-seconds', values['interval-seconds'], (n) => n > 0),
    rate: values.rate === undefined ? undefined : number('rate', values.rate, (n) => n > 0),
    fraction: number('fraction', values.fraction, (n) => n > 0 && n <= 1),
    saturateSeconds: number(
      'saturate-seconds',
      values['saturate-seconds'],
      (n) => Number.isInteger(n) && n > 0,
    ),
    connections: number('connections', values.connections, (n) => Number.isInteger(n) && n > 0),
    growthRatio: 1.15,
    growthBytes: 32 * MiB,
    writeLine: (line) => process.stdout.write(`${line}\n`),
  };
  process.stdout.write(`cldist API soak, Node ${process.version}\n`);
  const report = await runSoak(options);
  process.stdout.write(`\n${summary(report, options)}\n`);
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}

await main();
