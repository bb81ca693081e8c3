import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { createDynalite } from '../local/dynalite-transactions.cjs';
import { createApiApp } from '../shared/api/app.ts';
import { type RunningServer, serveNode } from '../shared/api/node-server.ts';
import { makeAwsClients } from '../shared/aws-clients.ts';
import { parseConfig } from '../shared/config.ts';
import { withRecordCache } from '../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../shared/instances/repository.ts';
import type { InstanceRepository } from '../shared/instances/types.ts';
import { ledgerTableInput } from '../shared/ledger/table.ts';
import { createLocalStore } from '../shared/store/local-store.ts';

export interface BenchApi {
  dir: string;
  server: RunningServer;
  instances: InstanceRepository;
  /** Stops the server, the repository and dynalite, and removes the folder. */
  close(): Promise<void>;
}

/**
 * The instance API as `cldist serve` runs it (record cache over the DynamoDB repository, a local config
 * folder), on loopback, over its own dynalite in a temporary folder: what the API benchmarks measure.
 */
export async function startBenchApi(prefix: string, adminToken: string): Promise<BenchApi> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const dynamo: Server = createDynalite({ path: join(dir, 'ledger'), createTableMs: 0 });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  const clients = makeAwsClients({ dynamodb: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}` });
  await clients.dynamodb.send(new CreateTableCommand(ledgerTableInput('cldist-ledger')));
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: 'cldist-ledger' },
  );
  const instances = withRecordCache(createDynamoInstanceRepository(clients.doc, { table: 'cldist-ledger' }));
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(join(dir, 'configs')),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer', token: adminToken },
    },
    parseConfig({}),
  );
  const server = await serveNode(app, { host: '127.0.0.1', port: 0 });
  return {
    dir,
    server,
    instances,
    async close() {
      await server.close();
      await instances.close();
      await new Promise<void>((resolve) => dynamo.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
