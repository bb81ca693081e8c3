import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { sweepConfigBodies } from '../../shared/instances/body-sweep.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { instanceKeyParts, ledgerKeySchema } from '../../shared/ledger/table.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { emulatorClients, freshBucket, freshTable } from '../support/emulators.ts';

const adminToken = 'admin-token-for-race-tests';
const admin = { Authorization: `Bearer ${adminToken}` };
const clients = emulatorClients();
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const ignitionOf = (name: string) => ({
  ignition: {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${name}` } }] },
  },
});

type StoreKind = 'local folder' | 'fauxqs S3';
/** Where bodies go: into the record (the default for configs this small), or all into the config store. */
type BodyForm = 'inline' | 'store';

const configFor = (form: BodyForm) =>
  parseConfig(form === 'store' ? { instances: { inlineBodyMaxBytes: 0 } } : {});

async function harness(storeKind: StoreKind, recordCache: boolean, form: BodyForm = 'inline') {
  const table = await freshTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  let bodies: ObjectStore;
  if (storeKind === 'fauxqs S3') {
    bodies = createS3Store(clients.s3, { bucket: await freshBucket(clients, 'configs') });
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'cldist-races-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    bodies = createLocalStore(dir);
  }
  const ledger = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  const instances: InstanceRepository = recordCache
    ? withRecordCache(ledger, { index: await loadIdIndex(ledger) })
    : ledger;
  cleanups.push(() => instances.close());
  const refused: string[] = [];
  const clock = () => new Date();
  const app = createApiApp(
    {
      instances,
      bodies,
      clock,
      adminAuth: { kind: 'bearer', token: adminToken },
      countRefused: (o) => refused.push(o),
    },
    configFor(form),
  );
  const put = async (id: string, body: unknown) => {
    const response = await app.request(`/v1/instances/${id}`, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as { token?: string; error?: { code: string } };
    return { status: response.status, token: answer.token, code: answer.error?.code };
  };
  const fetchConfig = async (id: string, token: string) => {
    const response = await app.request(`/v1/instances/${id}/ignition`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    return { status: response.status, text: await response.text() };
  };
  return { table, bodies, instances, refused, clock, put, fetchConfig };
}

const shapes: [StoreKind, boolean, BodyForm][] = [
  ['local folder', true, 'store'],
  ['local folder', false, 'store'],
  ['fauxqs S3', false, 'store'],
  ['local folder', true, 'inline'],
  ['fauxqs S3', false, 'inline'],
];

describe.each(shapes)(
  'racing PUTs to one id (%s, record cache %s, bodies %s)',
  (storeKind, recordCache, form) => {
    it('never leave it unfetchable: the one winner serves its body, losers get 409, the sweep keeps it', async () => {
      const h = await harness(storeKind, recordCache, form);
      for (const concurrency of [2, 4]) {
        for (let round = 0; round < 8; round++) {
          const id = `race-${concurrency}-${round}`;
          expect((await h.put(id, ignitionOf('x'))).status).toBe(201);
          const names = Array.from({ length: concurrency }, (_, i) => (i % 2 === 0 ? 'y' : 'x'));
          const answers = await Promise.all(names.map((name) => h.put(id, ignitionOf(name))));
          for (const answer of answers) expect([200, 409]).toContain(answer.status);
          for (const lost of answers.filter((a) => a.status === 409)) expect(lost.code).toBe('conflict');
          const won = answers.flatMap((a, i) =>
            a.status === 200 ? [{ token: a.token ?? '', name: names[i] }] : [],
          );
          expect(won.length).toBeGreaterThanOrEqual(1);
          const fetched = await Promise.all(won.map((w) => h.fetchConfig(id, w.token)));
          const served = fetched.flatMap((f, i) => (f.status === 200 ? [{ ...f, name: won[i]?.name }] : []));
          expect(
            served,
            `round ${round} of ${concurrency}: ${JSON.stringify(fetched.map((f) => f.status))}`,
          ).toHaveLength(1);
          expect(served[0]?.text).toContain(`data:,${served[0]?.name}`);
          expect(fetched.filter((f) => f.status !== 200).every((f) => f.status === 404)).toBe(true);
        }
      }
      const ids = Array.from({ length: 16 }, (_, i) => `race-${i < 8 ? 2 : 4}-${i % 8}`);
      if (form === 'inline') {
        expect(await h.bodies.list('instances/')).toEqual([]);
        for (const id of ids) expect((await h.instances.get(id))?.inlineBody).toBeInstanceOf(Uint8Array);
        return;
      }
      const before = (await h.bodies.list('instances/')).length;
      expect(before).toBeGreaterThan(ids.length);
      const kept = await sweepConfigBodies(h, { graceMs: 60_000 });
      expect(kept).toMatchObject({ removed: 0, instances: ids.length });
      const report = await sweepConfigBodies(h, { graceMs: -1000 });
      expect(report.removed).toBe(before - ids.length);
      const left = await h.bodies.list('instances/');
      expect(left).toHaveLength(ids.length);
      for (const id of ids) {
        const record = await h.instances.get(id);
        expect(left).toContain(record?.bodyKey);
      }
    });

    it('deletes conditionally and removes the deleted body at once', async () => {
      const h = await harness(storeKind, recordCache, form);
      const first = await h.put('gone', ignitionOf('x'));
      expect(first.status).toBe(201);
      const response = await createApiApp(
        {
          instances: h.instances,
          bodies: h.bodies,
          clock: h.clock,
          adminAuth: { kind: 'bearer', token: adminToken },
        },
        configFor(form),
      ).request('/v1/instances/gone', { method: 'DELETE', headers: admin });
      expect(response.status).toBe(204);
      expect(await h.bodies.list('instances/gone/')).toEqual([]);
      expect(await h.instances.get('gone')).toBeUndefined();
      expect((await h.fetchConfig('gone', first.token ?? '')).status).toBe(404);
    });
  },
);

describe('fetches without the token', () => {
  it('add nothing to the ledger, and are counted by outcome', async () => {
    const h = await harness('local folder', true);
    const known = await h.put('known', ignitionOf('k'));
    await h.instances.flush();
    const keys = async () =>
      ((await clients.doc.send(new ScanCommand({ TableName: h.table }))).Items ?? []).map(
        (item) => `${String(item[ledgerKeySchema.partitionKey])} ${String(item[ledgerKeySchema.sortKey])}`,
      );
    const before = new Set(await keys());
    for (let i = 0; i < 200; i++) expect((await h.fetchConfig(`nobody-${i}`, 'guess')).status).toBe(404);
    expect((await h.fetchConfig('known', 'guess')).status).toBe(404);
    expect((await h.fetchConfig('known', known.token ?? '')).status).toBe(200);
    await h.instances.flush();
    const added = (await keys()).filter((key) => !before.has(key));
    // The one served fetch is audited; the day marker that lets one machine expire it comes with it.
    const audited = `${instanceKeyParts.partition('known')} ${instanceKeyParts.auditSortPrefix}`;
    expect(added.filter((key) => key.startsWith(audited))).toHaveLength(1);
    expect(added.filter((key) => !key.startsWith(audited))).toEqual([
      expect.stringMatching(new RegExp(`^${instanceKeyParts.auditDayPartition('')}`)),
    ]);
    expect(h.refused.filter((o) => o === 'unknown-instance')).toHaveLength(200);
    expect(h.refused.filter((o) => o === 'wrong-token')).toHaveLength(1);
  });
});
