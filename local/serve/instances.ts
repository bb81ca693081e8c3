import { join, resolve } from 'node:path';
import { describeError } from '../../shared/errors.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { type BodyCache, createBodyCache, type InstanceServiceDeps } from '../../shared/instances/service.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import type { ProxySecretsProvider } from '../../shared/metadata/identity.ts';
import { fileSecretsProvider } from '../../shared/metadata/proxied.ts';
import { createLocalStore } from '../../shared/store/index.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import type { LedgerStandIn } from '../emulators.ts';
import { configStoreModes, prepareConfigStore } from '../runtime/data-dir.ts';
import { type InstanceUpkeep, startInstanceUpkeep } from '../runtime/instance-upkeep.ts';
import type { ServeContext } from './types.ts';

export interface LocalInstances {
  instances: InstanceRepository;
  bodies: ObjectStore;
  bodyCache: BodyCache;
  upkeep: InstanceUpkeep;
  proxySecrets?: ProxySecretsProvider;
  /** What the API and metadata routes need of them. */
  serviceDeps: InstanceServiceDeps;
}

/**
 * The instance side of one machine: records in the ledger behind a cache (small bodies inside them),
 * larger bodies in `{dataDir}/configs`,
 * the upkeep timers and the metadata proxy's secrets. One process serves this data dir (the lock), so the
 * record cache and id index are as current as the ledger: a config fetch costs no ledger read, known id or
 * not, which keeps dynalite from capping the fetch rate and the time of an answer from telling which ids
 * exist.
 */
export async function openInstances(
  context: ServeContext,
  ledger: Pick<LedgerStandIn, 'clients' | 'tableName' | 'auditTableName' | 'thread'>,
): Promise<LocalInstances> {
  const { config, logger, clock, lifecycle } = context;
  const ledgerInstances = createDynamoInstanceRepository(ledger.clients.doc, {
    table: ledger.tableName,
    // Audit items in a table of their own: on LevelDB, out of the key range the records are read from.
    auditTable: ledger.auditTableName,
    // A record the cache does not hold is read from the ledger thread directly: the fetch path's one read.
    readItem: ledger.thread.getItem,
    // So are its audit rounds and batched deletes: no SDK call and no HTTP per batch of 25.
    writeRequests: ledger.thread.writeItems,
    auditRetentionDays: config.api.auditRetentionDays,
    // Retried flushes are routine while the ledger restarts (a full disk); a drop is what to act on.
    onAuditError: (error, dropped) =>
      dropped > 0
        ? logger.warn('audit.entries_dropped', { dropped, cause: describeError(error) })
        : logger.debug('audit.flush_retry', { cause: describeError(error) }),
  });
  const { cacheBytes } = config.instances;
  const instances = withRecordCache(ledgerInstances, {
    index: await loadIdIndex(ledgerInstances),
    maxRecordBytes: cacheBytes.records,
    maxAddressBytes: cacheBytes.addresses,
  });
  lifecycle.defer(() => instances.close());
  const folder = join(context.dataDir, 'configs');
  await prepareConfigStore(folder, logger);
  const bodies = createLocalStore(folder, configStoreModes);
  const upkeep = startInstanceUpkeep({ instances, bodies, config, logger, clock });
  lifecycle.defer(() => upkeep.stop());
  const bodyCache = createBodyCache(cacheBytes.bodies);
  const proxySecrets =
    config.metadata.proxySecretFile === undefined
      ? undefined
      : await fileSecretsProvider(resolve(config.metadata.proxySecretFile));
  return {
    instances,
    bodies,
    bodyCache,
    upkeep,
    ...(proxySecrets === undefined ? {} : { proxySecrets }),
    serviceDeps: { instances, bodies, bodyCache, clock },
  };
}
