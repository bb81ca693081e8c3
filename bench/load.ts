import { performance } from 'node:perf_hooks';
import type { RawClient } from '../test/support/raw-http-client.ts';

/** What one run of load produced: successes per second, latency percentiles, failures by kind. */
export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failures: Map<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

class Recorder {
  private latencies = new Float64Array(4096);
  private count = 0;
  ok = 0;
  readonly failures = new Map<string, number>();

  record(result: number | string, ms: number): void {
    if (result === 200) {
      if (this.count === this.latencies.length) {
        const grown = new Float64Array(this.latencies.length * 2);
        grown.set(this.latencies);
        this.latencies = grown;
      }
      this.latencies[this.count++] = ms;
      this.ok++;
      return;
    }
    const key = String(result);
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }

  figures(elapsedMs: number): LoadFigures {
    const sorted = this.latencies.slice(0, this.count).sort();
    return {
      requestsPerSecond: (this.ok * 1000) / elapsedMs,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      ok: this.ok,
      failures: this.failures,
    };
  }
}

/**
 * Closed loop: every connection of every client sends its next request as soon as the previous answer is
 * in, for `seconds`. The throughput is what the server sustains with all of them busy.
 */
export async function saturate(
  clients: Array<{ client: RawClient; connections: number }>,
  seconds: number,
): Promise<LoadFigures> {
  const recorder = new Recorder();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async (client: RawClient) => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      const result = await client.send();
      recorder.record(result, performance.now() - sent);
    }
  };
  await Promise.all(
    clients.flatMap(({ client, connections }) => Array.from({ length: connections }, () => loop(client))),
  );
  return recorder.figures(performance.now() - started);
}

/**
 * Open loop: request i is due at `start + i / rate` whatever happened before, spread round-robin over the
 * clients, and its latency counts from the due time, so a stalled server shows up as queueing in the
 * percentiles rather than as fewer requests (no coordinated omission).
 */
export async function paced(clients: RawClient[], rate: number, seconds: number): Promise<LoadFigures> {
  const recorder = new Recorder();
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const inFlight: Array<Promise<void>> = [];
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
      for (; next < due; next++) {
        const scheduled = started + (next * 1000) / rate;
        const client = clients[next % clients.length];
        if (client === undefined) continue;
        inFlight.push(client.send().then((result) => recorder.record(result, performance.now() - scheduled)));
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  return recorder.figures(performance.now() - started);
}

/** One line of a load run's figures, the name padded to `width` so the rows of a table line up. */
export function describeLoad(name: string, f: LoadFigures, width: number): string {
  const failures = [...f.failures].map(([kind, n]) => `${kind}×${n}`).join(' ') || 'none';
  return `${name.padEnd(width)} ${f.requestsPerSecond.toFixed(0).padStart(7)} req/s   p50 ${f.p50Ms.toFixed(2).padStart(6)} ms   p99 ${f.p99Ms.toFixed(2).padStart(6)} ms   failures ${failures}`;
}
