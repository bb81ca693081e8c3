import { describe } from 'vitest';

/**
 * One suite, every adapter: a port's behaviour is written once as a contract and run against each
 * implementation, so adapters cannot quietly differ.
 */
export interface Adapter<T> {
  name: string;
  /** Build a fresh, empty instance for one test, and a way to tear it down. */
  make: () => Promise<{ subject: T; cleanup?: () => Promise<void> }>;
}

export function describeContract<T>(
  port: string,
  adapters: Adapter<T>[],
  contract: (make: Adapter<T>['make']) => void,
): void {
  for (const adapter of adapters) {
    describe(`${port} contract: ${adapter.name}`, () => contract(adapter.make));
  }
}
