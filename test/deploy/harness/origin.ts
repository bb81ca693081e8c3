import { inject } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../../local/sim-origin/sim-origin.ts';

/** Long enough for another deploy test file to finish with the origin on a loaded 2-core machine. */
export const originWaitMs = 110_000;

function addressInUse(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}

/**
 * Starts the sim origin at the one address the deployed config names. Only one test file can hold that
 * address at a time, and the listening socket is the lock: a file that finds it taken retries until the
 * holder closes its origin (or exits), within `originWaitMs`. Give the beforeAll hook a longer timeout.
 */
export async function startDeployedOrigin(privateKeyArmored?: string): Promise<SimOrigin> {
  const fixture = inject('deployFixture');
  const deadline = Date.now() + originWaitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await startSimOrigin({
        ...fixture.origin,
        privateKeyArmored: privateKeyArmored ?? fixture.originPrivateKeyArmored,
      });
    } catch (error) {
      if (!addressInUse(error) || Date.now() > deadline) {
        throw new Error(
          `the deployed origin address ${fixture.origin.host}:${fixture.origin.port} stayed in use for ` +
            `${originWaitMs} ms; another deploy test file holds it (close its origin in afterAll)`,
          { cause: error },
        );
      }
      // Polling the port with a bounded back-off: the holder releases it when its file finishes.
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)));
    }
  }
}
