import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { createBodyCache } from '../../shared/instances/body-cache.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import {
  fetchInstanceConfig,
  type InstanceServiceDeps,
  putInstanceConfig,
} from '../../shared/instances/service.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import { countAwsCalls } from '../support/aws-call-count.ts';
import { emulatorClients, freshBucket, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const ops = countAwsCalls({ dynamodb: clients.dynamodb, s3: clients.s3 });
const config = parseConfig({});
const clock = () => new Date();

const ignitionFor = (id: string, padding = 0) => ({
  ignition: { version: '3.3.0' },
  storage: {
    files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${id}${'x'.repeat(padding)}` } }],
  },
});

interface Fleet {
  size: number;
  table: string;
  bodies: ReturnType<typeof createS3Store>;
  tokens: Map<string, string>;
  /** A body over the inline limit, in the config store. */
  large: { id: string; token: string };
  oneTime: { id: string; token: string }[];
}

/** Registers `size` instances (plus one large and a few one-time ones) through the service core. */
async function registerFleet(size: number): Promise<Fleet> {
  const table = await freshTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  const bodies = createS3Store(clients.s3, { bucket: await freshBucket(clients, 'configs') });
  const instances = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 60_000 });
  const deps: InstanceServiceDeps = { instances, bodies, clock };
  const put = async (id: string, body: unknown) => {
    const result = await putInstanceConfig({ id, body }, deps, config);
    return result.token ?? '';
  };
  const tokens = new Map<string, string>();
  const ids = Array.from({ length: size }, (_, i) => `node-${i}`);
  for (let next = 0; next < ids.length; next += 16) {
    await Promise.all(
      ids
        .slice(next, next + 16)
        .map(async (id) => tokens.set(id, await put(id, { ignition: ignitionFor(id) }))),
    );
  }
  const large = { id: 'large', token: await put('large', { ignition: ignitionFor('large', 40 * 1024) }) };
  const oneTime = await Promise.all(
    ['once-a', 'once-b', 'once-c'].map(async (id) => ({
      id,
      token: await put(id, { ignition: ignitionFor(id), oneTime: true }),
    })),
  );
  await instances.close();
  return { size, table, bodies, tokens, large, oneTime };
}

/** A repository and deps with nothing cached: every fetch's reads reach the emulators and are counted. */
function coldDeps(fleet: Fleet): InstanceServiceDeps & { instances: InstanceRepository } {
  const instances = createDynamoInstanceRepository(clients.doc, {
    table: fleet.table,
    flushIntervalMs: 60_000,
  });
  return { instances, bodies: fleet.bodies, clock, bodyCache: createBodyCache(1024 * 1024) };
}

async function fetchCounted(deps: InstanceServiceDeps, id: string, token: string) {
  ops.reset();
  const result = await fetchInstanceConfig(
    { id, kind: 'ignition', token, sourceIp: '10.0.0.1', userAgent: 'Ignition/2.14.0', consume: true },
    deps,
  );
  await deps.instances.flush();
  return { status: result.status, ops: ops.usage().calls };
}

/** The same spread of ids in any fleet: every id is equally likely to be the one fetched. */
function sampleIds(fleet: Fleet, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node-${(i * 7919 + 13) % fleet.size}`);
}

describe('operations per config fetch, whatever the number of instances', () => {
  const fleets: Fleet[] = [];

  beforeAll(async () => {
    fleets.push(await registerFleet(10), await registerFleet(1000));
  }, 120_000);

  afterAll(() => ops.reset());

  it('an inline body: one ledger read, one audit write, no store read, the same at 10 and 1,000', async () => {
    const perFleet: Record<string, number>[][] = [];
    for (const fleet of fleets) {
      const deps = coldDeps(fleet);
      const seen: Record<string, number>[] = [];
      for (const id of sampleIds(fleet, 12)) {
        const fetched = await fetchCounted(deps, id, fleet.tokens.get(id) ?? '');
        expect(fetched.status).toBe('ok');
        seen.push(fetched.ops);
      }
      await deps.instances.close();
      perFleet.push(seen);
    }
    const [small, large] = perFleet;
    for (const seen of [small, large]) {
      for (const counts of seen ?? []) {
        expect(counts).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 1 });
      }
    }
    expect(large).toEqual(small);
  });

  it('audit writes are batched: twenty fetches, one flush, one BatchWriteItem', async () => {
    for (const fleet of fleets) {
      const deps = coldDeps(fleet);
      ops.reset();
      for (const id of sampleIds(fleet, 20)) {
        const result = await fetchInstanceConfig(
          {
            id,
            kind: 'ignition',
            token: fleet.tokens.get(id),
            sourceIp: '10.0.0.1',
            userAgent: 'x',
            consume: true,
          },
          deps,
        );
        expect(result.status).toBe('ok');
      }
      await deps.instances.flush();
      expect(ops.usage().calls).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 20 });
      await deps.instances.close();
    }
  });

  it('a one-time config: one ledger read and the conditional consume; a second fetch is refused', async () => {
    for (const fleet of fleets) {
      const deps = coldDeps(fleet);
      for (const { id, token } of fleet.oneTime) {
        const first = await fetchCounted(deps, id, token);
        expect(first.status).toBe('ok');
        expect(first.ops).toEqual({
          'DynamoDB.BatchWriteItem': 1,
          'DynamoDB.GetItem': 1,
          'DynamoDB.UpdateItem': 1,
        });
        const again = await fetchCounted(deps, id, token);
        expect(again.status).toBe('not-found');
        expect(again.ops).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 1 });
      }
      await deps.instances.close();
    }
  });

  it('a body over the inline limit costs one store read, cold, and none once cached', async () => {
    for (const fleet of fleets) {
      const deps = coldDeps(fleet);
      const cold = await fetchCounted(deps, fleet.large.id, fleet.large.token);
      expect(cold.status).toBe('ok');
      expect(cold.ops).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 1, 'S3.GetObject': 1 });
      const warm = await fetchCounted(deps, fleet.large.id, fleet.large.token);
      expect(warm.ops).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 1 });
      await deps.instances.close();
    }
  });

  it('behind the single-machine record cache: one ledger read while cold, none once cached', async () => {
    for (const fleet of fleets) {
      const ledger = createDynamoInstanceRepository(clients.doc, {
        table: fleet.table,
        flushIntervalMs: 60_000,
      });
      const instances = withRecordCache(ledger, { index: await loadIdIndex(ledger) });
      const deps: InstanceServiceDeps = { instances, bodies: fleet.bodies, clock };
      const [id] = sampleIds(fleet, 1);
      const token = fleet.tokens.get(id ?? '') ?? '';
      // A record read is kept from its second read on, so a fleet fetching once each does not churn it.
      for (let read = 0; read < 2; read++) {
        const cold = await fetchCounted(deps, id ?? '', token);
        expect(cold.ops).toEqual({ 'DynamoDB.BatchWriteItem': 1, 'DynamoDB.GetItem': 1 });
      }
      const warm = await fetchCounted(deps, id ?? '', token);
      expect(warm.ops).toEqual({ 'DynamoDB.BatchWriteItem': 1 });
      const unknown = await fetchCounted(deps, 'nobody', token);
      expect(unknown).toEqual({ status: 'not-found', ops: {} });
      await instances.close();
    }
  });

  /** A record cache of about four records' worth over the second fleet, and the ledger reads of a fetch. */
  async function smallCache() {
    const fleet = fleets[1];
    if (fleet === undefined) throw new Error('no fleet');
    const ledger = createDynamoInstanceRepository(clients.doc, {
      table: fleet.table,
      flushIntervalMs: 60_000,
    });
    const instances = withRecordCache(ledger, { index: await loadIdIndex(ledger), maxRecordBytes: 4096 });
    const deps: InstanceServiceDeps = { instances, bodies: fleet.bodies, clock };
    const readsOf = async (id: string) =>
      (await fetchCounted(deps, id, fleet.tokens.get(id) ?? '')).ops['DynamoDB.GetItem'] ?? 0;
    return { fleet, instances, readsOf };
  }

  it('keeps the record cache within its byte budget: an evicted record is read again', async () => {
    // Twenty fetched records cannot all stay.
    const { fleet, instances, readsOf } = await smallCache();
    const ids = sampleIds(fleet, 20);
    // Each fetched twice, so that each is kept (a record read once is not).
    for (const id of ids) for (let read = 0; read < 2; read++) expect(await readsOf(id)).toBe(1);
    const last = ids.at(-1) ?? '';
    const first = ids[0] ?? '';
    expect(await readsOf(last)).toBe(0);
    // Evicted, it is kept again as it was kept at first: from its second read on.
    expect(await readsOf(first)).toBe(1);
    expect(await readsOf(first)).toBe(1);
    expect(await readsOf(first)).toBe(0);
    await instances.close();
  });

  it('keeps a record fetched again and again while records fetched once each pass through', async () => {
    const { fleet, instances, readsOf } = await smallCache();
    const [hot = '', ...once] = sampleIds(fleet, 40);
    expect(await readsOf(hot)).toBe(1);
    expect(await readsOf(hot)).toBe(1);
    for (const id of once) expect(await readsOf(id)).toBe(1);
    expect(await readsOf(hot)).toBe(0);
    await instances.close();
  });
});
