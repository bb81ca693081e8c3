import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFauxqs } from 'fauxqs';
import type { TestProject } from 'vitest/node';
import { createDynalite } from '../../local/dynalite-transactions.cjs';

declare module 'vitest' {
  export interface ProvidedContext {
    fauxqsEndpoint: string;
    dynamodbEndpoint: string;
  }
}

/**
 * One fauxqs (S3, SQS, SNS) and one in-memory dynalite (with TransactWriteItems, as `cldist serve` runs it)
 * for the whole run, on port 0.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const dynamo: Server = createDynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  const { port } = dynamo.address() as AddressInfo;
  project.provide('fauxqsEndpoint', `http://127.0.0.1:${fauxqs.port}`);
  project.provide('dynamodbEndpoint', `http://127.0.0.1:${port}`);
  return async () => {
    await fauxqs.stop();
    await new Promise<void>((resolve) => dynamo.close(() => resolve()));
  };
}
