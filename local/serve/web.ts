import { createRecentBoots } from '../../shared/boot/recent.ts';
import { createDynamoBootStore } from '../../shared/boot/store.ts';
import { withBootCache, withCurrentCache } from '../../shared/boot/store-cache.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import type { StatusModel } from '../status/model.ts';
import type { WorkerPool } from '../worker-pool.ts';
import type { LocalFleet } from './fleet.ts';
import type { Foundation } from './foundation.ts';
import type { BoundServer } from './http.ts';
import type { Scheduler } from './scheduler.ts';
import type { ServeContext } from './types.ts';

export interface Web {
  /** Absent with `http: false`. */
  server?: BoundServer;
  /** The fleet recorder and its pass; absent with `http: false` (no Omaha endpoint, nothing to record). */
  fleet?: LocalFleet;
  /** The metadata listener's URL, when one was asked for. */
  metadataUrl?: string;
  /** The boot listener's URL, when one was asked for. */
  bootUrl?: string;
  status(): Promise<StatusModel>;
}

/**
 * The HTTP side: the instance service, one server for the status page, the mirror and the API, and the
 * metadata listener. Loaded only when the host serves HTTP: `mirror --once` needs none of it, nor the
 * instance records and their upkeep.
 */
export async function openWeb(
  context: ServeContext,
  parts: {
    base: Foundation;
    runtime: MirrorRuntime;
    scheduler: Scheduler;
    pool: () => Pick<WorkerPool, 'inFlight'> | undefined;
  },
): Promise<Web> {
  const { options } = context;
  const { base, runtime, scheduler, pool } = parts;
  const { statusSource } = await import('./status.ts');
  const common = { runtime, ...base, scheduler, pool, concurrency: options.concurrency };
  if (options.http === false) {
    return { status: statusSource({ ...common, demo: options.demo ?? false, url: '' }) };
  }
  const [{ openInstances }, { bindServer, serveHttp }, { openFleet }] = await Promise.all([
    import('./instances.ts'),
    import('./http.ts'),
    import('./fleet.ts'),
  ]);
  const { lifecycle } = context;
  const instances = await openInstances(context, base.ledger);
  // Opened before the server binds, so at shutdown the server stops taking check-ins before the flush.
  const fleet = openFleet(context, runtime);
  const server = await bindServer(options.host, options.port, lifecycle);
  const demo = options.demo ?? false;
  // One process owns every write to this data dir, so the boot store can sit behind a cache.
  const boot = {
    store: withBootCache(
      createDynamoBootStore(base.ledger.clients.doc, base.ledger.tableName, context.clock),
      context.config.instances.cacheBytes.boot,
    ),
    releases: withCurrentCache(runtime.deps.ledger),
    recent: createRecentBoots(),
  };
  const status = statusSource({
    ...common,
    instances,
    fleet,
    demo,
    url: server.url,
    recentBoots: boot.recent,
  });
  const { adminToken } = base;
  const urls = await serveHttp(context, { server, adminToken, runtime, instances, fleet, status, boot });
  return { server, fleet, status, ...urls };
}
