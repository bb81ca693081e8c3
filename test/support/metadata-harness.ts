import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import type { Hono } from 'hono';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { sourceAddressIdentity } from '../../shared/metadata/identity.ts';
import { createConfigMerger } from '../../shared/metadata/merge.ts';
import { createMetadataApp } from '../../shared/metadata/routes.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { emulatorClients, freshTable } from './emulators.ts';

export const adminToken = 'metadata-admin-token';

export const baseIgnition = {
  ignition: { version: '3.0.0' },
  storage: { files: [{ path: '/etc/provider/agent.conf', mode: 420, contents: { source: 'data:,agent' } }] },
};

export interface MetadataHarness {
  api: Hono;
  /** The metadata listener's app: identity by the socket's peer address. */
  listener: Hono;
  instances: InstanceRepository;
  setNow(date: Date): void;
  /** A request to the listener app as if from `address`. */
  fromAddress(address: string, path: string, init?: RequestInit): Promise<Response>;
  put(id: string, body: Record<string, unknown>): Promise<Response>;
  admin(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  config?: Record<string, unknown>;
  proxySecrets?: readonly string[];
  cache?: boolean;
  instances?: InstanceRepository;
}

/** The API app and the listener app over one dynalite table and one config folder, as `serve` wires them. */
export async function metadataHarness(options: HarnessOptions = {}): Promise<MetadataHarness> {
  const clients = emulatorClients();
  let instances = options.instances;
  if (instances === undefined) {
    const table = await freshTable(clients, 'meta');
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: table },
    );
    const ledger = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
    instances = options.cache === false ? ledger : withRecordCache(ledger);
  }
  const dir = await mkdtemp(join(tmpdir(), 'cldist-metadata-'));
  const bodies = createLocalStore(dir);
  let now = new Date('2026-06-01T00:00:00Z');
  const clock = () => now;
  const config = parseConfig(options.config ?? { platform: { baseIgnition } });
  const secrets = options.proxySecrets;
  const api = createApiApp(
    {
      instances,
      bodies,
      clock,
      adminAuth: { kind: 'bearer', token: adminToken },
      onInternalError: () => undefined,
      ...(secrets === undefined ? {} : { proxySecrets: async () => secrets }),
    },
    config,
  );
  const deps = { instances, bodies, clock };
  const listener = createMetadataApp({
    identity: sourceAddressIdentity(instances),
    deps,
    config,
    merge: createConfigMerger(config.platform.baseIgnition, config.instances.cacheBytes.merged),
  });
  const repository = instances;
  const admin = async (path: string, init: RequestInit = {}) =>
    api.request(path, {
      ...init,
      headers: { Authorization: `Bearer ${adminToken}`, ...(init.headers as Record<string, string>) },
    });
  return {
    api,
    listener,
    instances,
    setNow: (date) => {
      now = date;
    },
    fromAddress: async (address, path, init) =>
      listener.request(path, init, { incoming: { socket: { remoteAddress: address } } }),
    put: async (id, body) => admin(`/v1/instances/${id}`, { method: 'PUT', body: JSON.stringify(body) }),
    admin,
    close: async () => {
      await repository.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function userIgnition(name: string): Record<string, unknown> {
  return {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: `/etc/${name}.conf`, mode: 420, contents: { source: `data:,${name}` } }] },
  };
}

/** The user config inside a served wrapper (its second merge source), decoded. */
export function mergedSources(body: string): unknown[] {
  const wrapper = JSON.parse(body) as { ignition: { config: { merge: { source: string }[] } } };
  return wrapper.ignition.config.merge.map((entry) =>
    JSON.parse(Buffer.from(entry.source.replace(/^data:;base64,/, ''), 'base64').toString('utf8')),
  );
}
