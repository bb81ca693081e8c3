import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { RunningServer } from '../shared/api/node-server.ts';
import { type AwsClients, makeAwsClients } from '../shared/aws-clients.ts';
import { withRecordCache } from '../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../shared/instances/repository.ts';
import type { InstanceRepository } from '../shared/instances/types.ts';
import { ledgerTableInput } from '../shared/ledger/table.ts';
import { serveInstanceApi } from '../test/support/instance-api-server.ts';

export interface BenchApi {
  dir: string;
  server: RunningServer;
  instances: InstanceRepository;
  /** Stops the server, the repository and dynalite, and removes the folder. */
  close(): Promise<void>;
}

/** The ledger table on dynalite, stored in `dir`, as `cldist serve` keeps it on one machine. */
export interface BenchTable {
  clients: AwsClients;
  close(): Promise<void>;
}

export async function startBenchTable(dir: string): Promise<BenchTable> {
  const dynamo: Server = dynalite({ path: join(dir, 'ledger'), createTableMs: 0 });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  const clients = makeAwsClients({ dynamodb: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}` });
  await clients.dynamodb.send(new CreateTableCommand(ledgerTableInput('cldist-ledger')));
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: 'cldist-ledger' },
  );
  return { clients, close: () => new Promise<void>((resolve) => dynamo.close(() => resolve())) };
}

/**
 * The instance API as `cldist serve` runs it (record cache over the DynamoDB repository, a local config
 * folder), on loopback, over its own dynalite in a temporary folder: what the API benchmarks measure.
 */
export async function startBenchApi(prefix: string, adminToken: string): Promise<BenchApi> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const table = await startBenchTable(dir);
  const { clients } = table;
  const instances = withRecordCache(createDynamoInstanceRepository(clients.doc, { table: 'cldist-ledger' }));
  const server = await serveInstanceApi(dir, instances, adminToken);
  return {
    dir,
    server,
    instances,
    async close() {
      await server.close();
      await instances.close();
      await table.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
