import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, describeError } from '../../shared/errors.ts';
import type { Logger } from '../runtime/log.ts';

/** What was started, stopped in reverse order; a failed step is logged and the others still run. */
export interface Lifecycle {
  defer(step: () => Promise<void>): void;
  stop(): Promise<void>;
}

export function createLifecycle(logger: Logger): Lifecycle {
  const steps: Array<() => Promise<void>> = [];
  return {
    defer: (step) => {
      steps.push(step);
    },
    async stop() {
      for (const step of steps.splice(0).reverse()) {
        await step().catch((error: unknown) =>
          logger.error('shutdown.step_failed', { cause: describeError(error) }),
        );
      }
    },
  };
}

/** Resolves true when `work` outlived `graceMs`, which a shutdown reports and then goes on without it. */
export async function outlives(work: Promise<unknown>, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    work.then(() => false),
    new Promise<boolean>((done) => {
      timer = setTimeout(() => done(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  return late;
}

/** Binds the server, turning the usual refusals into errors that name the flag to change. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new ConfigError(`${host}:${port} is already in use; pass another --port`, { cause: error }));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new ConfigError(`cannot listen on --host ${host}: no such local address`, { cause: error }));
      } else {
        reject(error);
      }
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/** Stops taking connections, closes idle ones now and the rest after two seconds. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((done) => {
    server.close(() => done());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
}

/** Graceful stop, idempotent: every later call gets the first call's promise. */
export function closeOnce(logger: Logger, lifecycle: Lifecycle, beforeStop: () => void): () => Promise<void> {
  let closed: Promise<void> | undefined;
  return () => {
    closed ??= (async () => {
      logger.info('shutdown.started', {});
      beforeStop();
      await lifecycle.stop();
      logger.info('shutdown.done', {});
    })();
    return closed;
  };
}
