import * as z from 'zod';

/** The fleet view: how Omaha check-ins are recorded, counted and watched. */
export const fleetConfigSchema = z
  .strictObject({
    /**
     * How long a check-in may wait in memory before it is written (BatchWriteItem); also what a crash can
     * lose of the newest states. On Lambda every invocation writes before it returns.
     */
    flushIntervalSeconds: z.number().int().min(1).max(300).default(5),
    /** A write starts at once when this many machines wait. */
    flushAtMachines: z.number().int().min(1).max(100_000).default(2000),
    /** At most this many machines wait in memory (a ledger down for long); the oldest are dropped beyond. */
    maxPendingMachines: z.number().int().min(1).max(10_000_000).default(100_000),
    /** At most about this much memory of waiting state, in MiB. */
    maxPendingMiB: z.number().int().min(1).max(4096).default(64),
    /**
     * A check-in that changes nothing since the state last written (no event, same version, group,
     * board, OEM, boot and answer) is written again only after this long; 0 writes every check-in.
     */
    unchangedRefreshMinutes: z.number().int().min(0).max(1440).default(10),
    /** Days a machine stays in the fleet view after it was last heard of. */
    retentionDays: z.number().int().min(1).max(3650).default(30),
    /** A machine not heard of for this long is inactive: counted apart, and not waited for by a rollout. */
    activeWindowMinutes: z.number().int().min(1).max(100_000).default(180),
    /** How often the fleet is counted (the status page's plot) and its notifications decided. */
    snapshotEveryMinutes: z.number().int().min(1).max(1440).default(5),
    /** Days a snapshot of the counts is kept. */
    snapshotRetentionDays: z.number().int().min(1).max(3650).default(30),
    /** `update.failed_rate`: the share of machines updating to a version whose last event is an error. */
    failedRate: z
      .strictObject({
        threshold: z.number().gt(0).max(1).default(0.2),
        /** Fewer machines updating than this never raise it: one failure of two is not a rate. */
        minInstances: z.number().int().min(1).max(1_000_000).default(5),
      })
      .default({ threshold: 0.2, minInstances: 5 }),
  })
  .default({
    flushIntervalSeconds: 5,
    flushAtMachines: 2000,
    maxPendingMachines: 100_000,
    maxPendingMiB: 64,
    unchangedRefreshMinutes: 10,
    retentionDays: 30,
    activeWindowMinutes: 180,
    snapshotEveryMinutes: 5,
    snapshotRetentionDays: 30,
    failedRate: { threshold: 0.2, minInstances: 5 },
  });
