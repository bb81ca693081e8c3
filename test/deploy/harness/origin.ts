import { inject } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../../local/sim-origin/sim-origin.ts';

/**
 * Starts the sim origin at the one address the deployed config names, with the run's signing key unless
 * another is given. Only one test file can hold that address at a time; the fixture's
 * `waitForAddressMs` makes a file that finds it taken wait (bounded) until the holder closes its origin,
 * so give the beforeAll hook a timeout longer than that.
 */
export function startDeployedOrigin(privateKeyArmored?: string): Promise<SimOrigin> {
  const fixture = inject('deployFixture');
  return startSimOrigin({
    ...fixture.origin,
    privateKeyArmored: privateKeyArmored ?? fixture.originPrivateKeyArmored,
  });
}

/** The beforeAll timeout for a file that starts the deployed origin. */
export function originHookTimeoutMs(): number {
  return inject('deployFixture').origin.waitForAddressMs + 10_000;
}
