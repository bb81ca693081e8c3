import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { createRecentBoots, type RecentBoots } from '../../shared/boot/recent.ts';
import { type BootStore, createDynamoBootStore } from '../../shared/boot/store.ts';
import { withBootCache } from '../../shared/boot/store-cache.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { mirrorBootRelease } from './boot-release.ts';
import { emulatorClients, freshTable } from './emulators.ts';
import { facts } from './ledger-fixtures.ts';

export const adminToken = 'boot-admin-token';
export const mirrorBaseUrl = 'http://mirror.example:8080/mirror';

export interface BootRig {
  server: RunningServer;
  ledger: Ledger;
  store: BootStore;
  instances: InstanceRepository;
  recent: RecentBoots;
  config: CldistConfig;
  /** Admin request against the API, JSON in and out. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** Marks a release's PXE pair and disk image verified and moves `current` to it. */
  mirrorRelease(channel: string, version: string, current?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** The API app with boot routes over dynalite, a ledger holding whatever releases the test mirrors. */
export async function startBootRig(
  overrides: Record<string, unknown> = {},
  options: { cached?: boolean } = {},
): Promise<BootRig> {
  const dir = await mkdtemp(join(tmpdir(), 'cldist-boot-'));
  const clients = emulatorClients();
  const table = await freshTable(clients);
  await tableActive(table);
  const clock = () => new Date();
  const ledger = createDynamoLedger(clients.doc, table, { clock });
  const instances = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  const ledgerStore = createDynamoBootStore(clients.doc, table, clock);
  // `cldist serve` puts the boot store behind its one-machine cache; the Lambda does not.
  const store = options.cached === true ? withBootCache(ledgerStore) : ledgerStore;
  const recent = createRecentBoots();
  const config = parseConfig({
    channels: [{ name: 'stable' }, { name: 'beta' }],
    boot: { mirrorBaseUrl },
    ...overrides,
  });
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(join(dir, 'configs')),
      clock,
      adminAuth: { kind: 'bearer', token: adminToken },
      boot: { store, releases: ledger, recent },
    },
    config,
  );
  const server = await serveNode(app, { host: '127.0.0.1', port: 0 });
  return {
    server,
    ledger,
    store,
    instances,
    recent,
    config,
    admin: (method, path, body) =>
      fetch(`${server.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${adminToken}` },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    async mirrorRelease(channel, version, current = true) {
      const release = { source: 'flatcar', channel, board: 'amd64-usr', version };
      await mirrorBootRelease(ledger, release, { current, facts });
    },
    async close() {
      await server.close();
      await instances.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
