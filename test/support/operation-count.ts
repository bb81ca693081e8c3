import { Session } from 'node:inspector/promises';

/**
 * Counts the JavaScript a piece of work executes, through V8's precise coverage (the inspector's Profiler
 * domain, in this process): every function call and every block run, in this repository's code and in the
 * packages it uses alike. Unlike a time, the count is the same on a loaded machine as on an idle one, so a
 * test can compare the work two inputs cost without a flaky margin. Work done inside the engine's own
 * built-ins (a regular expression, `JSON.parse`, `Buffer.byteLength`) counts as the one call that started it.
 */
export interface OperationCount {
  /** Function calls plus block executions, over every script. */
  total: number;
  /** The same, only over scripts whose URL contains `part` (e.g. `/node_modules/yaml/`). */
  in(part: string): number;
}

interface ScriptCoverage {
  url: string;
  functions: { ranges: { count: number }[] }[];
}

function tally(coverage: ScriptCoverage[]): OperationCount {
  const byUrl = new Map<string, number>();
  for (const script of coverage) {
    let sum = 0;
    for (const fn of script.functions) for (const range of fn.ranges) sum += range.count;
    byUrl.set(script.url, (byUrl.get(script.url) ?? 0) + sum);
  }
  const total = [...byUrl.values()].reduce((a, b) => a + b, 0);
  return {
    total,
    in: (part) => [...byUrl].filter(([url]) => url.includes(part)).reduce((a, [, n]) => a + n, 0),
  };
}

export interface OperationCounter {
  /** Runs `work` once and counts what it executed; nothing else may run in this process meanwhile. */
  count(work: () => unknown): Promise<OperationCount>;
  stop(): Promise<void>;
}

/**
 * Start counting before the code to be measured is imported (import it dynamically afterwards): V8 counts
 * blocks only in functions compiled while precise coverage is on.
 */
export async function startOperationCounter(): Promise<OperationCounter> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const take = async () =>
    ((await session.post('Profiler.takePreciseCoverage')) as { result: ScriptCoverage[] }).result;
  return {
    async count(work) {
      // Taking the coverage resets the counters: what ran before `work` does not count.
      await take();
      await work();
      return tally(await take());
    },
    async stop() {
      await session.post('Profiler.stopPreciseCoverage');
      session.disconnect();
    },
  };
}
