/**
 * The names a CloudWatch alarm or dashboard matches on, owned here and imported both by the code that
 * emits them (the Lambda handlers and the cores) and by the stack that alarms on them. An alarm on a
 * metric nobody emits stays quietly OK forever, so a rename must reach both sides at once: renaming a key
 * breaks compilation, and test/cdk/monitoring.test.ts refuses an alarmed metric no product module emits.
 *
 * This module imports nothing, so a Lambda bundle that reads it pulls in no CDK code.
 */

/** The CloudWatch namespace of every metric cldist emits (Powertools Metrics, embedded metric format). */
export const metricNamespace = 'cldist';

/**
 * Powertools `serviceName` of each function. It is the `service` field of every log line and the
 * `service` dimension of every custom metric, so an alarm on a custom metric names the emitting function
 * through it.
 */
export const serviceNames = {
  poller: 'cldist-poller',
  worker: 'cldist-mirror-worker',
  api: 'cldist-api',
} as const;

export type ServiceName = (typeof serviceNames)[keyof typeof serviceNames];

/** The dimension Powertools Metrics adds to every metric, holding the service name. */
export const serviceDimension = 'service';

/** Custom metric names, all of unit Count. */
export const metricNames = {
  /** Channels the poller could not read in one run; the run itself succeeds. */
  pollErrors: 'PollErrors',
  /** Releases the poller claimed (and enqueued jobs for) in one run. */
  releasesClaimed: 'ReleasesClaimed',
  /** Signing subkeys that are the newest valid one of their primary and expire within the warning window. */
  signingKeyExpiring: 'SigningKeyExpiring',
  /** Instance config fetches the API refused (wrong token or unknown instance), counted, never stored. */
  fetchesRefused: 'FetchesRefused',
  /** The refused fetches whose instance id is not known at all. */
  unknownInstanceFetches: 'UnknownInstanceFetches',
  /** Retention sweeps of the poller that failed in one run (a half-done prune, or a stream over `keepReleases`). */
  pruneFailures: 'PruneFailures',
} as const;

export type MetricName = (typeof metricNames)[keyof typeof metricNames];
