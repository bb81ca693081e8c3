import type { ObjectStore } from '../store/types.ts';
import { maxPutMs } from './service.ts';
import type { InstanceRepository } from './types.ts';

/**
 * How old an unreferenced body must be before the sweep removes it. A PUT writes its body before its
 * record and gives up if the record write would come later than `maxPutMs`, so a body this old that no
 * record points at never will be.
 */
export const bodySweepGraceMs = 10 * maxPutMs;

/** The constant input of the scheduled rule that runs the sweep in the API function on AWS. */
export const configBodySweepEvent = { cldist: 'sweep-config-bodies' } as const;

export interface BodySweepReport {
  /** Instance folders looked at. */
  instances: number;
  /** Bodies removed: replaced by a later PUT, written by a PUT that lost a race, or left by a crash. */
  removed: number;
  /** Unreferenced bodies younger than the grace period, left for the next sweep. */
  young: number;
  /** Instances not looked at because `shouldStop` said so. */
  skipped: number;
}

export interface BodySweepOptions {
  graceMs?: number;
  /** Instances looked up at once (one ledger read each). */
  concurrency?: number;
  /**
   * Asked before each instance; true stops the sweep there (a Lambda running out of time). A sweep that
   * may stop starts at a random instance, so runs that each cover a slice still cover every instance.
   */
  shouldStop?: () => boolean;
}

/**
 * Remove config bodies that no instance record points at. PUT and DELETE never delete in their racing
 * path; this is where replaced and losing bodies go. A record whose body is inline points at no stored
 * body, so a body left by a replace from the store to inline is unreferenced and goes too. Body keys are unique per write, so once a body is
 * unreferenced and older than the grace period, nothing can point at it again and removing it is safe.
 */
export async function sweepConfigBodies(
  deps: { instances: Pick<InstanceRepository, 'get'>; bodies: ObjectStore; clock: () => Date },
  options: BodySweepOptions = {},
): Promise<BodySweepReport> {
  const graceMs = options.graceMs ?? bodySweepGraceMs;
  const keysById = new Map<string, string[]>();
  for (const key of await deps.bodies.list('instances/')) {
    const id = key.split('/')[1];
    if (id === undefined || id === '') continue;
    const keys = keysById.get(id);
    if (keys === undefined) keysById.set(id, [key]);
    else keys.push(key);
  }
  const report: BodySweepReport = { instances: keysById.size, removed: 0, young: 0, skipped: 0 };
  const cutoff = deps.clock().getTime() - graceMs;
  const sweepOne = async (id: string, keys: string[]) => {
    const record = await deps.instances.get(id);
    for (const key of keys) {
      if (key === record?.bodyKey) continue;
      const head = await deps.bodies.head(key);
      if (head === undefined) continue;
      if (head.lastModified.getTime() > cutoff) {
        report.young++;
        continue;
      }
      await deps.bodies.delete(key);
      report.removed++;
    }
  };
  const queue = [...keysById];
  if (options.shouldStop !== undefined) {
    const start = Math.floor(Math.random() * queue.length);
    queue.push(...queue.splice(0, start));
  }
  const worker = async () => {
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      if (options.shouldStop?.() === true) {
        report.skipped += queue.length + 1;
        queue.length = 0;
        return;
      }
      await sweepOne(...next);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return report;
}
