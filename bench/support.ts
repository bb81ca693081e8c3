import { type ChildProcess, spawn } from 'node:child_process';

/** Medians, not means: these machines are noisy, and one stalled round should not move a figure. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** GNU time (`/usr/bin/time -f %M`) prints the peak RSS in KiB as the last line of stderr. */
export function peakMiB(stderr: string): number {
  return Number(stderr.trim().split('\n').at(-1) ?? '') / 1024;
}

/**
 * GNU time with `-f '%M %U %S'`: the peak RSS in KiB and the user and system CPU seconds, as the last line
 * of stderr. CPU seconds say what a run costs even when other work on the machine stretches its wall time.
 */
export function peakAndCpu(stderr: string): { rss: number; cpu: number } {
  const [kib, user, system] = (stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { rss: (kib ?? Number.NaN) / 1024, cpu: (user ?? Number.NaN) + (system ?? Number.NaN) };
}

/** fauxqs in its own process, so the S3 side does not share an event loop with what is measured. */
export async function startFauxqsProcess(): Promise<{ endpoint: string; process: ChildProcess }> {
  const script =
    "const { startFauxqs } = await import('fauxqs'); const f = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false }); console.log(f.port);";
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    proc.stdout?.once('data', (data: Buffer) => resolve(data.toString().trim()));
    proc.once('exit', (code) => reject(new Error(`fauxqs exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, process: proc };
}
