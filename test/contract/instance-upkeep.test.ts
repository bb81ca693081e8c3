import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { startInstanceUpkeep } from '../../local/runtime/instance-upkeep.ts';
import { createLogger, type LogRecord } from '../../local/runtime/log.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { AuditEntry, InstanceRecord } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function record(id: string, bodyKey: string): InstanceRecord {
  return {
    id,
    kind: 'ignition',
    tokenHash: 'a'.repeat(64),
    etag: '"e"',
    bodyKey,
    size: 2,
    oneTime: false,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

const entry = (at: string): AuditEntry => ({
  at,
  route: 'ignition',
  sourceIp: '10.0.0.1',
  userAgent: 'Ignition',
  outcome: 'served',
});

describe('single-machine instance upkeep', () => {
  it('counts refused fetches into one log line, and sweeps stale bodies and expired audit', async () => {
    const table = await freshTable(clients);
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: table },
    );
    const instances = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 60_000 });
    cleanups.push(() => instances.close());
    const dir = await mkdtemp(join(tmpdir(), 'cldist-upkeep-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const bodies = createLocalStore(dir);
    await bodies.put('instances/a/current.ign', '{}');
    await bodies.put('instances/a/replaced.ign', '{}');
    await bodies.put('instances/gone/left.ign', '{}');
    await instances.put(record('a', 'instances/a/current.ign'), undefined);
    const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    const [old, recent] = [daysAgo(200), daysAgo(10)];
    for (const at of [old, recent]) {
      instances.recordFetch('a', entry(at));
      await instances.flush();
    }
    const records: LogRecord[] = [];
    const logger = createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) });
    const upkeep = startInstanceUpkeep({
      instances,
      bodies,
      config: parseConfig({ api: { auditRetentionDays: 90 } }),
      logger,
      // The bodies were written just now; a clock a day ahead makes them older than the grace period.
      clock: () => new Date(Date.now() + 86_400_000),
      sweepEveryMs: 3_600_000,
    });
    upkeep.countRefused('unknown-instance', 'ignition');
    upkeep.countRefused('unknown-instance', 'ignition');
    upkeep.countRefused('wrong-token', 'ignition');
    await upkeep.sweep();
    await upkeep.stop();
    expect(await bodies.list('instances/')).toEqual(['instances/a/current.ign']);
    expect(records.find((r) => r.event === 'api.fetches_refused')?.counts).toEqual({
      'unknown-instance': 2,
      'wrong-token': 1,
    });
    expect(upkeep.refusedTotals()).toEqual({ 'unknown-instance': 2, 'wrong-token': 1 });
    expect(records.find((r) => r.event === 'config_bodies.swept')).toMatchObject({ removed: 2 });
    expect((await instances.listAudit('a', 10)).map((e) => e.at)).toEqual([recent]);
    expect(records.find((r) => r.event === 'audit.expired_removed')).toMatchObject({ items: 1 });
  });
});
