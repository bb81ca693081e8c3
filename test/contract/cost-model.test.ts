import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ScheduledEvent } from 'aws-lambda';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sizeWorker } from '../../cdk/worker-sizing.ts';
import { createWorkerHandler } from '../../functions/mirror-worker/handler.ts';
import { createPollerHandler } from '../../functions/poller/handler.ts';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { createApiApp } from '../../shared/api/app.ts';
import { awsClientConfig } from '../../shared/aws-client-config.ts';
import { type AwsClients, makeAwsClients } from '../../shared/aws-clients.ts';
import { defaultTrustedFingerprints, parseConfig, projectRoot } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { silentLogger } from '../../shared/mirror/deps.ts';
import { loadMirrorRuntime } from '../../shared/mirror/wiring.ts';
import { runtimeEnvNames } from '../../shared/runtime-env.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import { drain, tableActive } from '../integration/mirror-harness.ts';
import { type AwsUsage, countAwsCalls } from '../support/aws-call-count.ts';
import {
  between,
  type CostCounts,
  type CostInputs,
  costRows,
  countColumns,
  parseCostPage,
  renderCountsTable,
  renderDollarsTable,
} from '../support/cost-model-page.ts';
import { freshBucket, freshQueue, freshTable, freshTopic } from '../support/emulators.ts';

/**
 * docs/cost.md prices AWS from the operations each request costs. This test runs the real code paths (the
 * API app as the API Lambda runs it, without the single-machine caches; the poller and worker handlers)
 * against the emulators with a counting middleware on every SDK client, and checks that the page's counts
 * are what the code does today and that its dollar figures are those counts times its prices. When a change
 * moves a count, the failure prints the table to paste into the page.
 */

const page = join(projectRoot, 'docs', 'cost.md');
const admin = { Authorization: 'Bearer cost-model-admin-token-0123456789abcdef' };
const ignition = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,node' } }] },
};
const accept = { Accept: 'application/vnd.coreos.ignition+json;version=3.3.0' };
const samples = 5;
const bulkLines = 100;

function per(usage: AwsUsage, divisor: number, lambda: number, api: number): CostCounts {
  return {
    dynamoReadUnits: usage.dynamoReadUnits / divisor,
    dynamoWriteUnits: usage.dynamoWriteUnits / divisor,
    s3PutClass: usage.s3PutClass / divisor,
    s3GetClass: usage.s3GetClass / divisor,
    sqsRequests: usage.sqsRequests / divisor,
    snsPublishes: usage.snsPublishes / divisor,
    lambdaInvocations: lambda,
    apiRequests: api,
  };
}

function minus(a: CostCounts, b: CostCounts, times = 1): CostCounts {
  const out = { ...a };
  for (const column of countColumns) out[column.key] = a[column.key] - times * b[column.key];
  return out;
}

async function measureApi(): Promise<Record<string, CostCounts>> {
  const clients = makeAwsClients({ s3: inject('fauxqsEndpoint'), dynamodb: inject('dynamodbEndpoint') });
  const table = await freshTable(clients, 'cost');
  await tableActive(table, clients);
  const bucket = await freshBucket(clients, 'cost');
  const counter = countAwsCalls(clients);
  const instances = createDynamoInstanceRepository(clients.doc, {
    table,
    flushIntervalMs: 60_000,
    auditDayMarkers: false,
  });
  const app = createApiApp(
    {
      instances,
      bodies: createS3Store(clients.s3, { bucket, sse: 'AES256' }),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer', token: admin.Authorization.slice('Bearer '.length) },
    },
    parseConfig({}),
  );
  /** One Lambda invocation: the request, then the audit flush the handler does before returning. */
  const invoke = async (path: string, init: RequestInit) => {
    const response = await app.request(path, init);
    const text = await response.text();
    await instances.flush();
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${text}`);
    return text;
  };
  const register = async (id: string, oneTime: boolean) => {
    const text = await invoke(`/v1/instances/${id}`, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({ ignition, ...(oneTime ? { oneTime } : {}) }),
    });
    return (JSON.parse(text) as { token: string }).token;
  };

  counter.reset();
  const tokens: string[] = [];
  for (let i = 0; i < samples; i++) tokens.push(await register(`put-${i}`, false));
  const single = per(counter.usage(), samples, 1, 1);

  counter.reset();
  const lines = Array.from({ length: bulkLines }, (_, i) => JSON.stringify({ id: `bulk-${i}`, ignition }));
  const answer = await invoke('/v1/instances', { method: 'POST', headers: admin, body: lines.join('\n') });
  expect(answer).toContain('"done":true');
  const bulk = per(counter.usage(), bulkLines, 1 / bulkLines, 1 / bulkLines);

  const oneTimeTokens: string[] = [];
  for (let i = 0; i < samples; i++) oneTimeTokens.push(await register(`once-${i}`, true));

  // Each fetch is of another instance, as at a fleet's boot: the Lambda's body cache never has it.
  const fetchAll = async (prefix: string, list: string[]) => {
    counter.reset();
    for (const [i, token] of list.entries()) {
      await invoke(`/v1/instances/${prefix}-${i}/ignition`, {
        headers: { ...accept, Authorization: `Bearer ${token}` },
      });
    }
    return per(counter.usage(), list.length, 1, 1);
  };
  return {
    single,
    bulk,
    fetch: await fetchAll('put', tokens),
    fetchOnce: await fetchAll('once', oneTimeTokens),
  };
}

const board = 'amd64-usr';
const scheduled = { time: '2026-11-26T10:00:00Z' } as ScheduledEvent;

/**
 * One mirror on its own emulated resources, with the given artifacts; `release` publishes and mirrors the
 * next version with the sizes given and returns what it cost (the poll, every job, SQS as Lambda's event
 * source mapping adds it).
 */
async function mirrorRig(endpoints: { fauxqs: string; dynamodb: string }, artifacts: string[]) {
  const origin: SimOrigin = await startSimOrigin();
  const clients: AwsClients = makeAwsClients({
    s3: endpoints.fauxqs,
    sqs: endpoints.fauxqs,
    sns: endpoints.fauxqs,
    dynamodb: endpoints.dynamodb,
  });
  // What Lambda's event source mapping does (receive, delete) is done here through a client not counted.
  const harnessSqs = new SQSClient(awsClientConfig(endpoints.fauxqs, undefined));
  const table = await freshTable(clients, 'cost');
  await tableActive(table, clients);
  const queue = await freshQueue(clients, 'jobs');
  const bucket = await freshBucket(clients, 'mirror');
  await clients.s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: 'trust/keyring.asc', Body: origin.publicKeyArmored }),
  );
  const env = {
    [runtimeEnvNames.config]: JSON.stringify({
      channels: [{ name: 'stable', baseUrl: origin.baseUrl }],
      artifacts: artifacts.map((name) => ({ name })),
      keyring: { trustedFingerprints: [...defaultTrustedFingerprints, origin.primaryFingerprint] },
      worker: { partSizeMiB: 5 },
    }),
    [runtimeEnvNames.resources]: JSON.stringify({
      tableName: table,
      jobsQueueUrl: queue.url,
      topicArn: await freshTopic(clients),
      mirrorBucket: bucket,
      trustKeyringKey: 'trust/keyring.asc',
    }),
  };
  const counter = countAwsCalls(clients);
  const runtime = loadMirrorRuntime(env, { logger: silentLogger, role: 'poller', clients });
  const poller = createPollerHandler(() => runtime, { addMetric: () => {}, publishStoredMetrics: () => {} });
  const worker = createWorkerHandler(() => runtime, silentLogger);
  let version = 100;
  return {
    async release(sizes: Record<string, number>): Promise<CostCounts> {
      version++;
      await origin.publishRelease({
        channel: 'stable',
        board,
        version: `${version}.0.0`,
        artifacts: artifacts
          .filter((name) => name !== 'version.txt')
          .map((name) => ({ name, size: sizes[name] ?? 1000 })),
      });
      counter.reset();
      const report = await poller(scheduled);
      expect(report.results.map((r) => r.outcome)).toEqual(['new-release']);
      expect((await drain(worker, queue, { sqs: harnessSqs })).failures).toBe(0);
      // Each message the code sent is one worker invocation, and one receive and one delete by the mapping.
      const usage = counter.usage();
      const counts = per(usage, 1, 1 + usage.sqsMessagesSent, 0);
      counts.sqsRequests += 2 * usage.sqsMessagesSent;
      return counts;
    },
    async pollUnchanged(): Promise<CostCounts> {
      counter.reset();
      const report = await poller(scheduled);
      expect(report.results.map((r) => r.outcome)).toEqual(['unchanged']);
      return per(counter.usage(), 1, 1, 0);
    },
    async close() {
      harnessSqs.destroy();
      await origin.close();
    },
  };
}

/**
 * A release's operations split into a fixed part, a part per artifact and a part per upload part past an
 * artifact's first: two mirrors that differ by one artifact, then the same release with that artifact
 * three 5 MiB parts long instead of one. The second release of each is measured: the first of a board also
 * creates its poll state.
 */
async function measureMirror(endpoints: { fauxqs: string; dynamodb: string }) {
  const MiB = 1024 * 1024;
  const two = await mirrorRig(endpoints, ['version.txt', 'a.bin']);
  const three = await mirrorRig(endpoints, ['version.txt', 'a.bin', 'b.bin']);
  try {
    await two.release({});
    const twoArtifacts = await two.release({});
    const poll = await two.pollUnchanged();
    await three.release({});
    const threeArtifacts = await three.release({});
    const threeParts = await three.release({ 'b.bin': 10 * MiB + 1 });
    const perArtifact = minus(threeArtifacts, twoArtifacts);
    const perExtraPart = minus(threeParts, threeArtifacts);
    for (const column of countColumns) perExtraPart[column.key] /= 2;
    return {
      pollUnchanged: poll,
      releaseFixed: minus(twoArtifacts, perArtifact, 2),
      releasePerArtifact: perArtifact,
      releasePerExtraPart: perExtraPart,
    };
  } finally {
    await two.close();
    await three.close();
  }
}

describe('the AWS cost model (docs/cost.md)', () => {
  let fauxqs: FauxqsServer | undefined;
  let measured: CostInputs['counts'];
  const inputs = async () => parseCostPage(await readFile(page, 'utf8'));

  beforeAll(async () => {
    // Its own fauxqs on `localhost`: the runtime environment refuses the shared one's SQS URL form.
    fauxqs = await startFauxqs({ port: 0, host: 'localhost', logger: false });
    const endpoints = { fauxqs: `http://127.0.0.1:${fauxqs.port}`, dynamodb: inject('dynamodbEndpoint') };
    const api = await measureApi();
    measured = {
      registration: api.single as CostCounts,
      registrationBulk: api.bulk as CostCounts,
      fetch: api.fetch as CostCounts,
      fetchOneTime: api.fetchOnce as CostCounts,
      ...(await measureMirror(endpoints)),
    };
  }, 240_000);

  afterAll(async () => {
    await fauxqs?.stop();
  });

  it('counts per request what the code asks of AWS today', async () => {
    const table = renderCountsTable(measured);
    expect(
      between(await readFile(page, 'utf8'), 'cost-counts'),
      `docs/cost.md's operation counts are not what the code does now; put this between its cost-counts markers:\n\n${table}\n`,
    ).toBe(table);
  });

  it('prices every row as its counts times the listed prices', async () => {
    const page = await inputs();
    const table = renderDollarsTable(page);
    expect(
      page.dollarsTable,
      `docs/cost.md's dollar figures do not follow from its counts and prices; put this between its cost-dollars markers:\n\n${table}\n`,
    ).toBe(table);
    expect(costRows(page).every((row) => Number.isFinite(row.total) && row.total > 0)).toBe(true);
  });

  it('counts units by item size, and again for the index entry of an indexed item', async () => {
    const clients = makeAwsClients({ dynamodb: inject('dynamodbEndpoint') });
    const table = await freshTable(clients, 'units');
    await tableActive(table, clients);
    const counter = countAwsCalls(clients);
    const big = 'x'.repeat(1500);
    await clients.doc.send(new PutCommand({ TableName: table, Item: { pk: 'a', sk: 'plain', big } }));
    expect(counter.usage().dynamoWriteUnits).toBe(2);
    counter.reset();
    await clients.doc.send(
      new PutCommand({ TableName: table, Item: { pk: 'a', sk: 'indexed', gsi1pk: 'g', gsi1sk: 's', big } }),
    );
    expect(counter.usage().dynamoWriteUnits).toBe(4);
    counter.reset();
    await clients.doc.send(
      new GetCommand({ TableName: table, Key: { pk: 'a', sk: 'indexed' }, ConsistentRead: true }),
    );
    await clients.doc.send(new GetCommand({ TableName: table, Key: { pk: 'a', sk: 'indexed' } }));
    expect(counter.usage()).toMatchObject({
      dynamoReadUnits: 1.5,
      dynamoWriteUnits: 0,
      calls: { 'DynamoDB.GetItem': 2 },
    });
  });

  it("sizes the mirror worker's memory as the stack does", async () => {
    expect((await inputs()).prices.lambda.workerMemoryMiB).toBe(sizeWorker(parseConfig({}), 50).memoryMiB);
  });
});
