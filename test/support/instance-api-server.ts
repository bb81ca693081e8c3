import { join } from 'node:path';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig } from '../../shared/config.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';

/**
 * The instance API with the default config on loopback, as `cldist serve` runs it: config bodies in
 * `dir/configs`, the admin signed in with a bearer token. It imports nothing of the test runner, so the
 * benchmarks start the same server.
 */
export function serveInstanceApi(
  dir: string,
  instances: InstanceRepository,
  adminToken: string,
): Promise<RunningServer> {
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(join(dir, 'configs')),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer', token: adminToken },
    },
    parseConfig({}),
  );
  return serveNode(app, { host: '127.0.0.1', port: 0 });
}
