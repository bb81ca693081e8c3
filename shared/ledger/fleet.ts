import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { CldistConfig } from '../config.ts';
import { TransientError } from '../errors.ts';
import { type Item, type LedgerTable, ledgerTable, ledgerUnavailable, partitionKeyName } from './access.ts';
import {
  type FleetCheckState,
  type FleetEventState,
  type FleetMachine,
  type FleetStatus,
  fleetStatuses,
  type StoredAnswer,
} from './fleet-records.ts';
import {
  fleetKeyParts,
  ledgerKeySchema as k,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerKindAttribute,
  ledgerTtlAttribute,
} from './table.ts';

/** What one flush writes for one machine: its new check, its new event, or both. */
export interface FleetWrite {
  readonly machineId: string;
  readonly check?: FleetCheckState;
  readonly event?: FleetEventState;
}

/** Counts of the fleet at one moment, kept for the plot of versions over time. */
export interface FleetSnapshot {
  readonly at: string;
  readonly active: number;
  readonly byVersion: Readonly<Record<string, number>>;
  readonly byStatus: Readonly<Record<string, number>>;
}

export interface FleetPage {
  readonly machines: FleetMachine[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string;
}

/**
 * The fleet's part of the ledger. Each machine has up to two items under `fleet#{machineId}`: `check` (its
 * last update check) and `event` (its last event report), both listed on `gsi1` under `fleet`, sorted by
 * machine id, so one query pages through whole machines. They are written with plain puts in
 * BatchWriteItem batches (the last write wins, which is what the recorder's coalescing wants), and
 * expire `retentionDays` after the machine was last heard of.
 */
export interface FleetLedger {
  /** Writes every item of `writes`; unprocessed items are sent again, then a `TransientError` names how many are left. */
  writeFleet(writes: readonly FleetWrite[]): Promise<void>;
  /** Up to `limit` machines after machine id `after`, in id order. */
  listFleet(limit: number, after?: string): Promise<FleetPage>;
  /** Every machine, page by page, for counting. */
  scanFleet(): AsyncGenerator<FleetMachine>;
  putFleetSnapshot(snapshot: FleetSnapshot): Promise<void>;
  /** Snapshots taken at or after `since`, oldest first. */
  listFleetSnapshots(since: string): Promise<FleetSnapshot[]>;
  /**
   * Takes the right to send the notice `event` about `subject` for `leaseSeconds`; false once it was sent,
   * or while another caller holds it. A claim whose send never got recorded can be taken again after
   * its lease, so a crash between claim and send delays the notice rather than losing it.
   */
  claimFleetNotice(event: string, subject: string, leaseSeconds: number): Promise<boolean>;
  /** Records that the notice went out: it is never claimed again. */
  recordFleetNotice(event: string, subject: string): Promise<void>;
}

export interface FleetLedgerOptions {
  /** Days a machine's items are kept after it was last heard of. */
  retentionDays: number;
  /** Days a snapshot is kept. */
  snapshotRetentionDays: number;
  /** Waits before resending unprocessed items (attempt 0, 1, …); default 25 ms doubling. */
  backoff?: (attempt: number) => Promise<void>;
}

const batchSize = 25;
const maxWriteRounds = 6;
const dayMs = 86_400_000;

const defaultBackoff = (attempt: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, 25 * 2 ** attempt));

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

function expiry(at: string, days: number): number {
  return Math.ceil((Date.parse(at) + days * dayMs) / 1000);
}

function checkItem(machineId: string, check: FleetCheckState, retentionDays: number): Item {
  return {
    ...ledgerItems.fleetCheck(machineId),
    ...ledgerIndexEntry(ledgerIndex.fleet, fleetKeyParts.indexSort(machineId, 'check')),
    [ledgerKindAttribute]: 'fleet-check',
    [ledgerTtlAttribute]: expiry(check.at, retentionDays),
    machineId,
    ...check,
  };
}

function eventItem(machineId: string, event: FleetEventState, retentionDays: number): Item {
  return {
    ...ledgerItems.fleetEvent(machineId),
    ...ledgerIndexEntry(ledgerIndex.fleet, fleetKeyParts.indexSort(machineId, 'event')),
    [ledgerKindAttribute]: 'fleet-event',
    [ledgerTtlAttribute]: expiry(event.at, retentionDays),
    machineId,
    ...event,
  };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function answerOf(value: unknown): StoredAnswer {
  const answer = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (answer.kind === 'update') return { kind: 'update', version: text(answer.version) };
  if (answer.kind === 'event-ack') return { kind: 'event-ack' };
  if (answer.kind === 'error') return { kind: 'error', status: text(answer.status) };
  return { kind: 'noupdate' };
}

function toCheck(item: Item): FleetCheckState {
  const oem = optionalText(item.oem);
  const bootId = optionalText(item.bootId);
  return {
    at: text(item.at),
    appId: text(item.appId),
    group: text(item.group),
    version: text(item.version),
    board: text(item.board),
    ...(oem === undefined ? {} : { oem }),
    ...(bootId === undefined ? {} : { bootId }),
    answer: answerOf(item.answer),
  };
}

function toEvent(item: Item): FleetEventState {
  const status = fleetStatuses.includes(item.status as FleetStatus) ? (item.status as FleetStatus) : 'other';
  return {
    at: text(item.at),
    type: Number(item.type),
    result: Number(item.result),
    ...(typeof item.errorCode === 'number' ? { errorCode: item.errorCode } : {}),
    status,
    version: text(item.version),
  };
}

/** Folds items sorted by machine (check and event adjacent) into machines. */
function* machinesOf(items: Iterable<Item>): Generator<FleetMachine> {
  let current: { machineId: string; check?: FleetCheckState; lastEvent?: FleetEventState } | undefined;
  for (const item of items) {
    const machineId = text(item.machineId);
    if (current !== undefined && current.machineId !== machineId) {
      yield current;
      current = undefined;
    }
    current ??= { machineId };
    if (item[ledgerKindAttribute] === 'fleet-event') current.lastEvent = toEvent(item);
    else current.check = toCheck(item);
  }
  if (current !== undefined) yield current;
}

const fleetQuery = (after: string | undefined) => ({
  IndexName: k.gsi1Name,
  KeyConditionExpression: after === undefined ? '#g1pk = :fleet' : '#g1pk = :fleet AND #g1sk > :after',
  ExpressionAttributeNames: {
    '#g1pk': k.gsi1PartitionKey,
    ...(after === undefined ? {} : { '#g1sk': k.gsi1SortKey }),
  },
  ExpressionAttributeValues: {
    ':fleet': ledgerIndex.fleet,
    // Every item of machine `after` sorts below `{after}#~`: ids never hold `#`, and `~` sorts last.
    ...(after === undefined ? {} : { ':after': `${after}#~` }),
  },
});

async function putFleetSnapshot(
  table: LedgerTable,
  options: FleetLedgerOptions,
  snapshot: FleetSnapshot,
): Promise<void> {
  await table.put('put fleet snapshot', {
    ...ledgerItems.fleetSnapshot(snapshot.at),
    [ledgerKindAttribute]: 'fleet-snapshot',
    [ledgerTtlAttribute]: expiry(snapshot.at, options.snapshotRetentionDays),
    ...snapshot,
  });
}

async function listFleetSnapshots(table: LedgerTable, since: string): Promise<FleetSnapshot[]> {
  const items = await table.query('list fleet snapshots', {
    KeyConditionExpression: '#pk = :p AND #sk >= :since',
    ExpressionAttributeNames: { '#pk': k.partitionKey, '#sk': k.sortKey },
    ExpressionAttributeValues: { ':p': fleetKeyParts.snapshotPartition, ':since': since },
  });
  return items.map((item) => ({
    at: text(item.at),
    active: Number(item.active ?? 0),
    byVersion: (item.byVersion ?? {}) as Record<string, number>,
    byStatus: (item.byStatus ?? {}) as Record<string, number>,
  }));
}

function claimFleetNotice(
  table: LedgerTable,
  event: string,
  subject: string,
  leaseSeconds: number,
): Promise<boolean> {
  const now = table.clock();
  return table.put(
    'claim fleet notice',
    {
      ...ledgerItems.fleetNotice(event, subject),
      [ledgerKindAttribute]: 'fleet-notice',
      event,
      subject,
      leaseUntil: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
    },
    {
      condition: 'attribute_not_exists(#pk) OR (attribute_not_exists(sentAt) AND leaseUntil < :now)',
      names: partitionKeyName,
      values: { ':now': now.toISOString() },
    },
  );
}

async function recordFleetNotice(table: LedgerTable, event: string, subject: string): Promise<void> {
  await table.update('record fleet notice', ledgerItems.fleetNotice(event, subject), {
    set: ['sentAt = :now'],
    remove: ['leaseUntil'],
    values: { ':now': table.clock().toISOString() },
  });
}

export function fleetLedger(
  doc: DynamoDBDocumentClient,
  tableName: string,
  table: LedgerTable,
  options: FleetLedgerOptions,
): FleetLedger {
  const backoff = options.backoff ?? defaultBackoff;

  async function writeBatch(requests: WriteRequest[]): Promise<void> {
    let pending = requests;
    for (let round = 0; pending.length > 0; round++) {
      let out: BatchWriteCommandOutput;
      try {
        out = await doc.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } }));
      } catch (error) {
        throw ledgerUnavailable('write fleet', error);
      }
      pending = out.UnprocessedItems?.[tableName] ?? [];
      if (pending.length === 0) return;
      if (round + 1 >= maxWriteRounds) {
        throw new TransientError(
          'ledger-unavailable',
          `ledger write fleet: ${pending.length} items still unprocessed after ${maxWriteRounds} rounds`,
        );
      }
      await backoff(round);
    }
  }

  async function listFleet(limit: number, after?: string): Promise<FleetPage> {
    // Two items at most per machine: this many items hold `limit` whole machines and a sign of one more.
    const items = await table.query('list fleet', fleetQuery(after), 2 * limit + 2);
    const machines = [...machinesOf(items)];
    if (machines.length <= limit) return { machines };
    const page = machines.slice(0, limit);
    return { machines: page, next: page[page.length - 1]?.machineId ?? '' };
  }

  return {
    async writeFleet(writes) {
      const items: Item[] = [];
      for (const write of writes) {
        if (write.check !== undefined) {
          items.push(checkItem(write.machineId, write.check, options.retentionDays));
        }
        if (write.event !== undefined) {
          items.push(eventItem(write.machineId, write.event, options.retentionDays));
        }
      }
      for (let i = 0; i < items.length; i += batchSize) {
        await writeBatch(items.slice(i, i + batchSize).map((Item) => ({ PutRequest: { Item } })));
      }
    },

    listFleet,

    async *scanFleet() {
      let after: string | undefined;
      for (;;) {
        const page = await listFleet(500, after);
        yield* page.machines;
        if (page.next === undefined) return;
        after = page.next;
      }
    },

    putFleetSnapshot: (snapshot) => putFleetSnapshot(table, options, snapshot),
    listFleetSnapshots: (since) => listFleetSnapshots(table, since),
    claimFleetNotice: (event, subject, leaseSeconds) => claimFleetNotice(table, event, subject, leaseSeconds),
    recordFleetNotice: (event, subject) => recordFleetNotice(table, event, subject),
  };
}

/** The fleet part on its own table handle, for hosts that need nothing else of the ledger. */
export function createDynamoFleetLedger(
  doc: DynamoDBDocumentClient,
  tableName: string,
  options: FleetLedgerOptions & { clock?: () => Date },
): FleetLedger {
  const table = ledgerTable(doc, tableName, options.clock ?? (() => new Date()));
  return fleetLedger(doc, tableName, table, options);
}

/** The fleet ledger as every host builds it, its retention from the config. */
export function fleetLedgerFor(
  doc: DynamoDBDocumentClient,
  tableName: string,
  config: CldistConfig,
  clock: () => Date = () => new Date(),
): FleetLedger {
  return createDynamoFleetLedger(doc, tableName, {
    retentionDays: config.fleet.retentionDays,
    snapshotRetentionDays: config.fleet.snapshotRetentionDays,
    clock,
  });
}
