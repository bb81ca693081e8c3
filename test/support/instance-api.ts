import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { loadOrCreateAdminToken } from '../../local/admin-token.ts';
import type { RunningServer } from '../../shared/api/node-server.ts';
import type { AwsClients } from '../../shared/aws-clients.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { emulatorClients, freshTable } from './emulators.ts';
import { serveInstanceApi } from './instance-api-server.ts';

/** A new ledger table in dynalite, waited for until it is active. */
export async function freshActiveTable(clients: AwsClients): Promise<string> {
  const table = await freshTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  return table;
}

/** The instance repository on a table of its own, flushing its audit queue every 10 ms. */
export async function freshInstanceRepository(): Promise<InstanceRepository> {
  const clients = emulatorClients();
  const table = await freshActiveTable(clients);
  return createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
}

export interface CliApi {
  /** A temporary folder: `data/` holds the admin token, `configs/` the config bodies. */
  dir: string;
  server: RunningServer;
  instances: InstanceRepository;
  /** The `--api` and `--data-dir` options that point the CLI at this API with its stored admin token. */
  connection: string[];
  close(): Promise<void>;
}

/** The instance API on loopback as `cldist serve` runs it, for tests of the `cldist instances` CLI. */
export async function startCliApi(prefix: string): Promise<CliApi> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const instances = await freshInstanceRepository();
  const { token } = await loadOrCreateAdminToken(join(dir, 'data'));
  const server = await serveInstanceApi(dir, instances, token);
  return {
    dir,
    server,
    instances,
    connection: ['--api', server.url, '--data-dir', join(dir, 'data')],
    async close() {
      await server.close();
      await instances.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
