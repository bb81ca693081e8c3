import { describe, expect, it } from 'vitest';
import { runSoak, type SoakOptions } from '../support/soak.ts';

const MiB = 1024 * 1024;

/**
 * A fixed, modest rate rather than a fraction of a measured maximum: CI shares two cores with other jobs, and
 * what this proves is correctness under sustained load (no errors, no leak), not speed. The rate is far
 * below the slowest saturated run docs/benchmarks.md records for a loaded machine.
 */
const ci: SoakOptions = {
  durationSeconds: 30,
  intervalSeconds: 5,
  rate: 200,
  fraction: 1,
  saturateSeconds: 0,
  connections: 16,
  growthRatio: 1.5,
  growthBytes: 64 * MiB,
  writeLine: () => {},
};

describe('API soak in single-machine mode', () => {
  it('answers every request of a 30-second open-loop run with 200, and the server memory stays flat', async () => {
    const report = await runSoak(ci);

    expect(report.failures).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.serverInternalErrors).toBe(0);
    expect(report.scheduled).toBe(6000);
    expect(report.completed).toBe(6000);
    expect(report.intervals).toHaveLength(6);
    expect(report.intervals.reduce((sum, i) => sum + i.requests, 0)).toBe(6000);
    const second = report.intervals[1];
    const last = report.intervals.at(-1);
    expect(second).toBeDefined();
    expect(last?.rssBytes).toBeLessThanOrEqual(
      Math.max((second?.rssBytes ?? 0) * 1.5, (second?.rssBytes ?? 0) + 64 * MiB),
    );
    expect(last?.heapUsedBytes).toBeLessThanOrEqual((second?.heapUsedBytes ?? 0) + 64 * MiB);
  }, 120_000);

  it('counts every rejected request as an error and fails the run', async () => {
    const report = await runSoak({
      ...ci,
      durationSeconds: 2,
      intervalSeconds: 1,
      rate: 50,
      tokenOverride: 'not-the-issued-token',
    });

    expect(report.completed).toBe(100);
    expect(report.errors).toBe(100);
    expect(report.errorSamples).toHaveLength(1);
    expect(report.errorSamples[0]).toMatch(/^HTTP 4\d\d$/);
    expect(report.failures[0]).toMatch(/^100 error\(s\): HTTP 4\d\d/);
  }, 60_000);
});
