import { join, resolve } from 'node:path';
import { adminTokenFileName } from '../admin-token.ts';
import type { WorkerPool } from '../worker-pool.ts';
import { openFoundation } from './foundation.ts';
import { closeOnce, createLifecycle } from './lifecycle.ts';
import type { ServeContext, ServeHandle, ServeOptions } from './types.ts';

export type { ServeHandle, ServeOptions } from './types.ts';

/** What the runner builds on the foundation; loaded while the foundation starts. */
const loadRunnerModules = () =>
  Promise.all([import('./jobs.ts'), import('./mirror.ts'), import('./scheduler.ts'), import('./web.ts')]);

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
    // The foundation first: its ledger thread starts while the rest of the runner's modules load.
    const [opened, loaded] = await Promise.allSettled([openFoundation(context), loadRunnerModules()]);
    if (opened.status === 'rejected') throw opened.reason;
    if (loaded.status === 'rejected') throw loaded.reason;
    const base = opened.value;
    const [{ drainJobs, startJobs }, { openLocalMirror }, { createScheduler, resumeOpenWork }, { openWeb }] =
      loaded.value;
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
      ...(web.bootUrl === undefined ? {} : { bootUrl: web.bootUrl }),
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
