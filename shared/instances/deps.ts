import type { ObjectStore } from '../store/types.ts';
import type { BodyCache } from './body-cache.ts';
import type { ConfigKind, FetchOutcome, InstanceRepository } from './types.ts';

/**
 * Told about every fetch refused before the caller showed the instance's token (unknown id, no token,
 * wrong token), and about store or ledger failures before that point. These are counted in aggregate
 * (a metric on AWS, a counter in the logs on one machine), never stored per id: anyone can send them, so
 * storing them would let anyone grow the ledger.
 */
export type RefusedFetchCounter = (outcome: FetchOutcome, route: ConfigKind) => void;

export interface InstanceServiceDeps {
  instances: InstanceRepository;
  /** The config store (S3 config bucket, or a local folder). */
  bodies: ObjectStore;
  clock: () => Date;
  bodyCache?: BodyCache;
  countRefused?: RefusedFetchCounter;
}
