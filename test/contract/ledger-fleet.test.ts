import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../shared/errors.ts';
import { createDynamoFleetLedger, type FleetLedger, type FleetWrite } from '../../shared/ledger/fleet.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import type { FleetCheckIn } from '../../shared/update/fleet-record.ts';
import { createFleetRecorder } from '../../shared/update/fleet-recorder.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { plans, release } from '../support/ledger-fixtures.ts';

const clients = emulatorClients();
const options = { retentionDays: 30, snapshotRetentionDays: 30, backoff: () => Promise.resolve() };

function write(machineId: string, version = '4081.2.0', at = '2026-12-03T08:00:00.000Z'): FleetWrite {
  return {
    machineId,
    check: {
      at,
      appId: 'e96281a6-d1af-4bde-9a0a-97b76e56dc57',
      group: 'stable',
      version,
      board: 'amd64-usr',
      oem: 'openstack',
      bootId: `boot-${machineId}`,
      answer: { kind: 'noupdate' },
    },
  };
}

/**
 * The document client with a fault dynalite never produces: BatchWriteItem leaves the last `left` items
 * of each of the next `times` batches unprocessed (they are not sent), as a throttled DynamoDB does.
 */
function throttling(doc: DynamoDBDocumentClient, table: string, left: number, times: number) {
  const sent: number[] = [];
  let faults = times;
  const send = (async (command: unknown) => {
    if (command instanceof BatchWriteCommand && faults > 0) {
      faults--;
      const requests = command.input.RequestItems?.[table] ?? [];
      const kept = requests.slice(0, Math.max(0, requests.length - left));
      sent.push(kept.length);
      if (kept.length > 0) await doc.send(new BatchWriteCommand({ RequestItems: { [table]: kept } }));
      return { UnprocessedItems: { [table]: requests.slice(kept.length) } };
    }
    if (command instanceof BatchWriteCommand) sent.push(command.input.RequestItems?.[table]?.length ?? 0);
    return doc.send(command as BatchWriteCommand);
  }) as DynamoDBDocumentClient['send'];
  return { client: { send } as DynamoDBDocumentClient, sent };
}

describe('the fleet part of the ledger (dynalite)', () => {
  let table: string;
  let ledger: FleetLedger;
  let now: Date;

  beforeEach(async () => {
    table = await freshTable(clients);
    await tableActive(table);
    now = new Date('2026-12-03T08:00:00Z');
    ledger = createDynamoFleetLedger(clients.doc, table, { ...options, clock: () => now });
  });

  it('keeps the check and the event of a machine apart: writing one never erases the other', async () => {
    await ledger.writeFleet([write('m1')]);
    await ledger.writeFleet([
      {
        machineId: 'm1',
        event: {
          at: '2026-12-03T08:01:00.000Z',
          type: 13,
          result: 1,
          status: 'download-started',
          version: '4081.2.0',
        },
      },
    ]);
    await ledger.writeFleet([write('m1', '4081.2.0', '2026-12-03T08:02:00.000Z')]);
    const { machines, next } = await ledger.listFleet(10);
    expect(next).toBeUndefined();
    expect(machines).toEqual([
      {
        machineId: 'm1',
        check: { ...write('m1', '4081.2.0', '2026-12-03T08:02:00.000Z').check },
        lastEvent: {
          at: '2026-12-03T08:01:00.000Z',
          type: 13,
          result: 1,
          status: 'download-started',
          version: '4081.2.0',
        },
      },
    ]);
  });

  it('pages through whole machines in id order, and lists nothing else on the table', async () => {
    await createDynamoLedger(clients.doc, table).claimRelease(release, plans);
    const ids = Array.from({ length: 23 }, (_, i) => `m${String(i).padStart(3, '0')}`);
    await ledger.writeFleet(ids.map((id) => write(id)));
    await ledger.writeFleet(
      ids
        .filter((_, i) => i % 2 === 0)
        .map((id) => ({
          machineId: id,
          event: { at: '2026-12-03T08:05:00.000Z', type: 3, result: 2, status: 'complete', version: '2.0.0' },
        })),
    );
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await ledger.listFleet(5, after);
      for (const machine of page.machines) {
        seen.push(machine.machineId);
        expect(machine.check).toBeDefined();
        expect(machine.lastEvent !== undefined).toBe(Number(machine.machineId.slice(1)) % 2 === 0);
      }
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    expect(seen).toEqual(ids);
    expect(pages).toBe(5);
    const scanned: string[] = [];
    for await (const machine of ledger.scanFleet()) scanned.push(machine.machineId);
    expect(scanned).toEqual(ids);
  });

  it('writes more than one batch of 25 items, each item expiring retentionDays after it was heard', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `x${i}`);
    await ledger.writeFleet(ids.map((id) => write(id)));
    const all: string[] = [];
    for await (const machine of ledger.scanFleet()) all.push(machine.machineId);
    expect(all.sort()).toEqual([...ids].sort());
    const item = await clients.doc.send(
      new (await import('@aws-sdk/lib-dynamodb')).GetCommand({
        TableName: table,
        Key: { pk: 'fleet#x1', sk: 'check' },
      }),
    );
    expect(item.Item?.ttl).toBe(Date.parse('2026-12-03T08:00:00.000Z') / 1000 + 30 * 86_400);
  });

  it('sends unprocessed items again until all are written', async () => {
    const fault = throttling(clients.doc, table, 10, 2);
    const throttled = createDynamoFleetLedger(fault.client, table, options);
    const ids = Array.from({ length: 25 }, (_, i) => `u${String(i).padStart(2, '0')}`);
    await throttled.writeFleet(ids.map((id) => write(id)));
    // 25 asked, 15 taken; the 10 left sent again, none taken; then all 10.
    expect(fault.sent).toEqual([15, 0, 10]);
    const stored: string[] = [];
    for await (const machine of ledger.scanFleet()) stored.push(machine.machineId);
    expect(stored).toEqual(ids);
  });

  it('gives up with a TransientError naming what is left when items stay unprocessed', async () => {
    const fault = throttling(clients.doc, table, 3, 100);
    const throttled = createDynamoFleetLedger(fault.client, table, options);
    const error = await throttled
      .writeFleet([write('a'), write('b'), write('c'), write('d')])
      .catch((e) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/3 items still unprocessed after 6 rounds/);
  });

  it('keeps snapshots in time order and lists those since a time', async () => {
    for (const [at, active] of [
      ['2026-12-03T08:00:00.000Z', 3],
      ['2026-12-03T08:05:00.000Z', 4],
      ['2026-12-03T08:10:00.000Z', 5],
    ] as const) {
      await ledger.putFleetSnapshot({
        at,
        active,
        byVersion: { '4081.2.0': active },
        byStatus: { idle: active },
      });
    }
    const since = await ledger.listFleetSnapshots('2026-12-03T08:05:00.000Z');
    expect(since.map((s) => [s.at, s.active, s.byVersion['4081.2.0']])).toEqual([
      ['2026-12-03T08:05:00.000Z', 4, 4],
      ['2026-12-03T08:10:00.000Z', 5, 5],
    ]);
  });

  it('lets one caller claim a notice, again only after its lease, and never once it was sent', async () => {
    const claims = await Promise.all([
      ledger.claimFleetNotice('update.rolled_out', 'stable#amd64-usr#2.0.0', 60),
      ledger.claimFleetNotice('update.rolled_out', 'stable#amd64-usr#2.0.0', 60),
    ]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    now = new Date(now.getTime() + 61_000);
    expect(await ledger.claimFleetNotice('update.rolled_out', 'stable#amd64-usr#2.0.0', 60)).toBe(true);
    await ledger.recordFleetNotice('update.rolled_out', 'stable#amd64-usr#2.0.0');
    now = new Date(now.getTime() + 3_600_000);
    expect(await ledger.claimFleetNotice('update.rolled_out', 'stable#amd64-usr#2.0.0', 60)).toBe(false);
    expect(await ledger.claimFleetNotice('update.failed_rate', 'stable#amd64-usr#2.0.0', 60)).toBe(true);
  });

  it('records a synthetic load of 3,000 machines checking in twice through the recorder: every latest state lands', async () => {
    const recorder = createFleetRecorder({
      ledger,
      flushIntervalMs: 60_000,
      flushAtMachines: 1000,
      maxMachines: 20_000,
      maxBytes: 64 * 1024 * 1024,
      unchangedRefreshMs: 600_000,
      onError: (error) => {
        throw error;
      },
    });
    const checkIn = (i: number, round: number): FleetCheckIn => ({
      machineId: `${i.toString(16).padStart(32, '0')}`,
      appId: 'e96281a6-d1af-4bde-9a0a-97b76e56dc57',
      group: i % 3 === 0 ? 'beta' : 'stable',
      version: round === 0 ? '4081.2.0' : '4152.2.0',
      board: 'amd64-usr',
      at: new Date(Date.parse('2026-12-03T08:00:00Z') + round * 60_000 + i).toISOString(),
      events: [],
      answer: { kind: 'noupdate' },
    });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3000; i++) recorder.record(checkIn(i, round));
    }
    await recorder.close();
    expect(recorder.stats()).toMatchObject({ pending: 0, dropped: 0, recorded: 6000 });
    let count = 0;
    for await (const machine of ledger.scanFleet()) {
      count++;
      expect(machine.check?.version).toBe('4152.2.0');
    }
    expect(count).toBe(3000);
  }, 120_000);
});
