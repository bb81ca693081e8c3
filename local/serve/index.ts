import { join, resolve } from 'node:path';
import { adminTokenFileName } from '../admin-token.ts';
import type { WorkerPool } from '../worker-pool.ts';
import { openFoundation } from './foundation.ts';
import { drainJobs, startJobs } from './jobs.ts';
import { closeOnce, createLifecycle } from './lifecycle.ts';
import { openLocalMirror } from './mirror.ts';
import { createScheduler, resumeOpenWork } from './scheduler.ts';
import type { ServeContext, ServeHandle, ServeOptions } from './types.ts';
import { openWeb } from './web.ts';

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
    const { runtime, storeDescription } = await openLocalMirror(context, base);
    let pool: WorkerPool | undefined;
    await resumeOpenWork(runtime);
    const scheduler = createScheduler(runtime, base.diskGuard, logger);
    const web = await openWeb(context, { base, runtime, scheduler, pool: () => pool });
    base.queue.onStarted((queue) => {
      pool = startJobs(context, runtime, queue, base.diskGuard);
    });
    lifecycle.defer(async () => {
      closing = true;
      await scheduler.stop();
    });
    const { concurrency } = options;
    const started = { store: storeDescription, dataDir, concurrency };
    if (web.server === undefined) logger.info('mirror.started', started);
    else
      logger.info('http.listening', {
        url: web.server.url,
        port: web.server.port,
        status: `${web.server.url}/`,
        mirror: `${web.server.url}/mirror/{channel}/{board}/`,
        ...started,
      });
    await scheduler.pollNow();
    scheduler.start(options.pollEveryMs ?? config.schedule.everyMinutes * 60_000);
    return {
      url: web.server?.url ?? '',
      port: web.server?.port ?? 0,
      adminToken: base.adminToken,
      adminTokenFile: join(dataDir, adminTokenFileName),
      adminTokenCreated: base.adminTokenCreated,
      ...(web.metadataUrl === undefined ? {} : { metadataUrl: web.metadataUrl }),
      store: runtime.store ?? runtime.deps.store,
      ledger: runtime.deps.ledger,
      pollNow: scheduler.pollNow,
      lastPoll: scheduler.lastPoll,
      queueStarted: () => base.queue.started,
      status: web.status,
      drain: () =>
        drainJobs({ queue: base.queue, pool: () => pool, diskGuard: base.diskGuard, closing: () => closing }),
      close: closeOnce(logger, lifecycle, () => {
        closing = true;
      }),
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}
