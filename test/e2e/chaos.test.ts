import { describe, expect, it } from 'vitest';
import { planChaos } from '../chaos/plan.ts';
import { formatChaosReport, runChaos } from '../chaos/run.ts';
import { probeTmpfs } from '../support/tmpfs.ts';

const tmpfs = await probeTmpfs();

/**
 * Seed 925 is the short CI run (with fast-check's generator behind the schedule): its 4 releases draw a tampered required artifact, a tampered optional one (the
 * release must still be mirrored), a missing optional one, a killed worker, duplicate and reordered jobs,
 * 5xx, slow, stalled and dropped responses, and both stand-ins going away.
 */
const ciSeed = 925;

describe('seeded chaos run of the release mirror', () => {
  it('draws the same fault schedule for the same seed, and another for another seed', () => {
    const first = planChaos(7, 20);
    expect(planChaos(7, 20)).toEqual(first);
    expect(planChaos(8, 20).digest).not.toBe(first.digest);
    expect(first.workers).toBeGreaterThanOrEqual(2);
    expect(first.workers).toBeLessThanOrEqual(4);
    expect(new Set(first.releases.map((r) => r.channel)).size).toBe(3);
    const fates = first.releases.flatMap((r) => r.artifacts.map((a) => a.fate));
    expect(fates).toContain('tampered');
    expect(fates).toContain('missing');
  });

  it('keeps every invariant under a short seeded run', { timeout: 150_000 }, async () => {
    const report = await runChaos({ seed: ciSeed, releases: 4 });
    const text = formatChaosReport(report);
    expect(report.settled, text).toBe(true);
    expect(
      report.invariants.filter((i) => !i.pass).map((i) => `${i.name}: ${i.violations.join('; ')}`),
      text,
    ).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.summary.releases.mirrored).toBe(report.summary.releases.good);
    expect(report.summary.faults.tamper?.applied).toBeGreaterThan(0);
    expect(report.summary.faults.outage?.applied).toBe(report.plan.outages.length);
    // The rotation fault fired: the new subkey was refused as awaiting trust (alerted), then uploaded late.
    const rotation = report.invariants.find((i) => i.name.startsWith('a rotated subkey uploaded late'));
    expect(rotation?.pass, text).toBe(true);
    expect(rotation?.detail).toMatch(/; [1-9]\d* unknown-key alert\(s\)$/);
    expect(text).toMatch(/^RESULT: PASS$/m);
  });

  it.skipIf(!tmpfs.available)(
    `keeps every invariant while the mirror's disk fills and the ledger fails with I/O errors${
      tmpfs.available ? '' : ` (skipped: ${tmpfs.reason})`
    }`,
    { timeout: 200_000 },
    async () => {
      const report = await runChaos({ seed: ciSeed, releases: 4, diskFaults: true });
      const text = formatChaosReport(report);
      expect(report.skipped, text).toEqual([]);
      expect(report.settled, text).toBe(true);
      expect(
        report.invariants.filter((i) => !i.pass).map((i) => `${i.name}: ${i.violations.join('; ')}`),
        text,
      ).toEqual([]);
      expect(report.summary.faults.diskFull?.applied, text).toBeGreaterThan(0);
      expect(report.summary.faults.ledgerIo?.applied, text).toBeGreaterThan(0);
      expect(report.summary.retryCodes['store-unavailable'] ?? 0, text).toBeGreaterThan(0);
      expect(report.summary.releases.mirrored).toBe(report.summary.releases.good);
    },
  );

  it('fails the run when the mirror announces a release twice', { timeout: 150_000 }, async () => {
    const report = await runChaos({
      seed: ciSeed,
      releases: 2,
      wrapDeps: (deps) => ({
        ...deps,
        notifier: {
          async publish(event) {
            await deps.notifier.publish(event);
            if (event.event === 'release.mirrored') await deps.notifier.publish(event);
          },
        },
      }),
    });
    expect(report.passed).toBe(false);
    const failed = report.invariants.filter((i) => !i.pass).map((i) => i.name);
    expect(failed).toEqual(['one release.mirrored per good release']);
    expect(formatChaosReport(report)).toMatch(/^RESULT: FAIL$/m);
  });
});
