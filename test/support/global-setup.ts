import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    fauxqsEndpoint: string;
    dynamodbEndpoint: string;
  }
}

/** One fauxqs (S3, SQS, SNS) and one in-memory dynalite for the whole run, on port 0. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const dynamo: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  const { port } = dynamo.address() as AddressInfo;
  project.provide('fauxqsEndpoint', `http://127.0.0.1:${fauxqs.port}`);
  project.provide('dynamodbEndpoint', `http://127.0.0.1:${port}`);
  return async () => {
    await fauxqs.stop();
    await new Promise<void>((resolve) => dynamo.close(() => resolve()));
  };
}
