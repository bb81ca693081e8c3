import { join, resolve } from 'node:path';
import { describeError } from '../../shared/errors.ts';
import { adminTokenFileName } from '../admin-token.ts';
import { openFleet } from './fleet.ts';
import { openFoundation } from './foundation.ts';
import { bindServer, serveHttp } from './http.ts';
import { openInstances } from './instances.ts';
import { drainJobs, startJobs } from './jobs.ts';
import { closeOnce, createLifecycle } from './lifecycle.ts';
import { openLocalMirror } from './mirror.ts';
import { createScheduler, resumeOpenWork } from './scheduler.ts';
import { statusSource } from './status.ts';
import type { ServeContext, ServeHandle, ServeOptions } from './types.ts';

export type { ServeHandle, ServeOptions } from './types.ts';

/**
 * The whole distributor in one process: the same runtime and job policy as the Lambdas, over fauxqs for SQS
 * and SNS, dynalite on disk for the ledger, a local folder (or S3) for the mirror, a timer for the schedule,
 * a worker pool for the queue and one HTTP server for the API, the mirror and the status page.
 */
export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const { config, logger } = options;
  const dataDir = resolve(options.dataDir);
  const lifecycle = createLifecycle(logger);
  const context: ServeContext = {
    options,
    config,
    logger,
    dataDir,
    lifecycle,
    clock: options.clock ?? (() => new Date()),
  };
  let closing = false;
  try {
    const base = await openFoundation(context);
    const { clients, resources } = base.emulators;
    const { runtime, storeDescription } = await openLocalMirror(context, base);
    await resumeOpenWork(runtime);
    const instances = await openInstances(context, clients.doc, resources.tableName);
    // Opened before the server binds, so at shutdown the server stops taking check-ins before the flush.
    const fleet = openFleet(context, runtime);
    const server =
      options.http === false ? undefined : await bindServer(options.host, options.port, lifecycle);
    const url = server?.url ?? '';
    const pool = startJobs(context, runtime, base);
    const scheduler = createScheduler(runtime, base.diskGuard, logger);
    const { concurrency, demo = false } = options;
    const status = statusSource({
      runtime,
      ...base,
      scheduler,
      pool,
      concurrency,
      instances,
      fleet,
      demo,
      url,
    });
    const { adminToken } = base;
    const metadataUrl =
      server && (await serveHttp(context, { server, adminToken, runtime, instances, fleet, status }));
    lifecycle.defer(async () => {
      closing = true;
      await scheduler.stop();
    });
    const started = { store: storeDescription, dataDir, concurrency };
    if (server === undefined) logger.info('mirror.started', started);
    else
      logger.info('http.listening', {
        url,
        port: server.port,
        status: `${url}/`,
        mirror: `${url}/mirror/{channel}/{board}/`,
        ...started,
      });
    await scheduler.pollNow();
    // The status page's counts from the start, not only after the first interval.
    fleet
      .passNow()
      .catch((error: unknown) => logger.warn('fleet.pass_failed', { cause: describeError(error) }));
    scheduler.start(options.pollEveryMs ?? config.schedule.everyMinutes * 60_000);
    return {
      url,
      port: server?.port ?? 0,
      adminToken,
      adminTokenFile: join(dataDir, adminTokenFileName),
      adminTokenCreated: base.adminTokenCreated,
      ...(metadataUrl === undefined ? {} : { metadataUrl }),
      store: runtime.store ?? runtime.deps.store,
      ledger: runtime.deps.ledger,
      pollNow: scheduler.pollNow,
      fleet,
      lastPoll: scheduler.lastPoll,
      status,
      drain: () => drainJobs({ ...base, pool, closing: () => closing }),
      close: closeOnce(logger, lifecycle, () => {
        closing = true;
      }),
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}
