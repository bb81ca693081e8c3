import type { RecentBoots } from '../../shared/boot/recent.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import type { TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import { keyringStatus } from '../../shared/verify/keyring.ts';
import type { DiskGuard } from '../runtime/disk-guard.ts';
import type { LocalNotifications } from '../runtime/notifications.ts';
import { fleetStatusView } from '../status/fleet.ts';
import { listInstanceRows } from '../status/instances.ts';
import { buildStatus, type StatusModel } from '../status/model.ts';
import type { WorkerPool } from '../worker-pool.ts';
import type { LocalFleet } from './fleet.ts';
import type { LocalInstances } from './instances.ts';
import type { Scheduler } from './scheduler.ts';

/** Instances the status page lists; a provider has many, and `cldist instances get` shows any one. */
const statusInstanceLimit = 50;

/** The status page's model, read from the parts that own each fact. */
export function statusSource(parts: {
  runtime: MirrorRuntime;
  trust: TrustedKeyring;
  notifications: LocalNotifications;
  scheduler: Scheduler;
  /** Absent until the queue stand-in started (on demand). */
  pool: () => Pick<WorkerPool, 'inFlight'> | undefined;
  concurrency: number;
  /** Absent without an HTTP server: the page then has no instance section. */
  instances?: LocalInstances;
  /** Absent without an HTTP server (no Omaha endpoint): the page then has no fleet section. */
  fleet?: LocalFleet;
  diskGuard: DiskGuard;
  demo: boolean;
  url: string;
  recentBoots?: RecentBoots;
}): () => Promise<StatusModel> {
  const { config, deps } = parts.runtime;
  const warningDays = config.keyring.expiryWarningDays;
  const { instances, fleet } = parts;
  return () =>
    buildStatus({
      ledger: deps.ledger,
      mirrorSources: config.sources,
      keyring: () => keyringStatus(parts.trust.peek().keyring, deps.clock(), warningDays),
      keyWarningDays: warningDays,
      recentEvents: () => parts.notifications.recent(),
      pollProblem: parts.scheduler.pollProblem,
      worker: () => ({ inFlight: parts.pool()?.inFlight ?? 0, concurrency: parts.concurrency }),
      demo: parts.demo,
      mirrorBaseUrl: `${parts.url}/mirror`,
      ...(instances === undefined
        ? {}
        : {
            instances: () => listInstanceRows(instances.instances, statusInstanceLimit),
            refusedFetches: () => instances.upkeep.refusedTotals(),
          }),
      ...(parts.recentBoots === undefined ? {} : { recentBoots: parts.recentBoots.list }),
      disk: () => parts.diskGuard.state(),
      ...(fleet === undefined
        ? {}
        : {
            fleet: () => fleetStatusView(fleet.ledger, fleet.lastPass(), deps.clock(), statusInstanceLimit),
          }),
      clock: deps.clock,
    });
}
