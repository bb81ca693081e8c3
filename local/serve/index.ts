import { join, resolve } from 'node:path';
import { adminTokenFileName } from '../admin-token.ts';
import { startMetadataListener } from '../metadata-listener.ts';
import { startDiskGuard } from '../runtime/disk-guard.ts';
import { openFoundation, visibilityTimeoutSeconds } from './foundation.ts';
import { bindServer, createServeApp } from './http.ts';
import { openInstances } from './instances.ts';
import { drainJobs, startJobs } from './jobs.ts';
import { createLifecycle, outlives } from './lifecycle.ts';
import { openLocalMirror } from './mirror.ts';
import { createScheduler, resumeOpenWork } from './scheduler.ts';
import { statusSource } from './status.ts';
import type { ServeHandle, ServeOptions } from './types.ts';

export type { ServeHandle, ServeOptions } from './types.ts';

/**
 * The whole distributor in one process: the same cores as the Lambdas, with fauxqs for SQS and SNS,
 * dynalite on disk for the ledger, a local folder (or S3) for the mirror, a timer for the schedule, a
 * worker pool for the queue and one HTTP server for the API, the mirror and the status page.
 */
export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const { config, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const dataDir = resolve(options.dataDir);
  const graceMs = options.shutdownGraceMs ?? 10_000;
  const lifecycle = createLifecycle(logger);
  let closing = false;
  try {
    const base = await openFoundation(options, dataDir, clock, lifecycle);
    const { clients, resources } = base.emulators;
    const mirror = await openLocalMirror({ serve: options, dataDir, ...base, logger, clock });
    const { runtime } = mirror;
    await resumeOpenWork(runtime);
    const instances = await openInstances({
      doc: clients.doc,
      ...resources,
      dataDir,
      config,
      logger,
      clock,
      lifecycle,
    });
    const diskGuard = startDiskGuard({
      path: dataDir,
      minFreeMiB: options.minFreeDiskMiB ?? config.worker.minFreeDiskMiB,
      checkEveryMs: options.diskCheckEveryMs,
      logger,
    });
    lifecycle.defer(async () => diskGuard.stop());
    await diskGuard.check();
    const server =
      options.http === false ? undefined : await bindServer(options.host, options.port, lifecycle);
    const url = server?.url ?? '';
    const jobs = { sqs: clients.sqs, queueUrl: resources.jobsQueueUrl };
    const { concurrency, tracker } = options;
    const pool = startJobs({
      runtime,
      ...jobs,
      concurrency,
      visibilityTimeoutSeconds,
      tracker,
      diskGuard,
      logger,
    });
    lifecycle.defer(async () => {
      if (await outlives(pool.stop(), graceMs)) logger.warn('shutdown.transfers_still_running', { graceMs });
    });
    const scheduler = createScheduler(runtime, diskGuard, logger);
    const demo = options.demo ?? false;
    const status = statusSource({
      runtime,
      ...base,
      scheduler,
      pool,
      concurrency,
      instances,
      diskGuard,
      demo,
      url,
    });
    const store = mirror.runtime.store ?? runtime.deps.store;
    let metadataUrl: string | undefined;
    if (server !== undefined) {
      const { adminToken } = base;
      const refreshSeconds = options.refreshSeconds ?? 5;
      server.serve(
        createServeApp({
          config,
          host: options.host,
          server,
          adminToken,
          store,
          runtime,
          instances,
          status,
          refreshSeconds,
          logger,
        }),
      );
      if (options.metadataListen !== undefined) {
        const deps = instances.serviceDeps;
        const metadata = await startMetadataListener({ ...options.metadataListen, deps, config, logger });
        lifecycle.defer(() => metadata.close());
        metadataUrl = metadata.url;
      }
    }
    lifecycle.defer(async () => {
      closing = true;
      await scheduler.stop();
    });
    const started = { store: mirror.storeDescription, dataDir, concurrency };
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
    scheduler.start(options.pollEveryMs ?? config.schedule.everyMinutes * 60_000);
    let closed: Promise<void> | undefined;
    return {
      url,
      port: server?.port ?? 0,
      adminToken: base.adminToken,
      adminTokenFile: join(dataDir, adminTokenFileName),
      adminTokenCreated: base.adminTokenCreated,
      ...(metadataUrl === undefined ? {} : { metadataUrl }),
      store,
      ledger: runtime.deps.ledger,
      pollNow: scheduler.pollNow,
      lastPoll: scheduler.lastPoll,
      status,
      drain: () => drainJobs({ ...jobs, pool, diskGuard, closing: () => closing }),
      close() {
        closed ??= (async () => {
          logger.info('shutdown.started', {});
          closing = true;
          await lifecycle.stop();
          logger.info('shutdown.done', {});
        })();
        return closed;
      },
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}
