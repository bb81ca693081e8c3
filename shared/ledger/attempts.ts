import { type Item, type LedgerTable, partitionKeyName, strip, type WriteParts } from './access.ts';
import { endLease, mergeWriteParts, takeLease } from './lease.ts';
import { ledgerKeySchema as k, type LedgerKey, ledgerLeases } from './table.ts';

/** Longer error texts are cut, so a chatty upstream cannot grow an item towards DynamoDB's 400 KB. */
export const errorTextLimit = 1000;

const attemptLease = ledgerLeases.attempt;

/** A verdict ends the attempt, and an alert owed for an earlier state. */
export const leasesEndedByVerdict: readonly string[] = [
  attemptLease.attribute,
  'alertedAt',
  ledgerLeases.alert.attribute,
];

const stateName = { '#state': 'state' } as const;
const indexNames = { '#g1pk': k.gsi1PartitionKey, '#g1sk': k.gsi1SortKey } as const;

/**
 * What sets one kind of leased work apart from another (an artifact to mirror, an update payload to
 * check): its key, its entry on its open index, the states that are still open, and which open items the
 * stalled sweep sends again. The attempt itself works the same for every kind, so a fix to it is made once.
 */
export interface AttemptWork<Ref, Open extends string> {
  key(ref: Ref): LedgerKey;
  /** The open index's sort key: the last progress first, so the stalled sweep reads the oldest work. */
  openSortKey(updatedAt: string, ref: Ref): string;
  /** The `gsi1` partition that lists the open items. */
  openIndex: string;
  /** The states an attempt may begin in; an item in one of them whose lease is held is busy. */
  openStates: readonly [Open, ...Open[]];
  /** The open items the stalled sweep sends again: as a condition on the item, and as the same test. */
  stalled: { condition: string; values: Record<string, unknown>; holds(record: Item): boolean };
  /** The words each operation has in the ledger's errors. */
  operations: { get: string; begin: string; end: string; listStalled: string; touchStalled: string };
}

/** Why an attempt did not begin: a closed state, a lease held by someone else, or no such item. */
export type AttemptRefusalOf<State extends string, Open extends State> =
  | Exclude<State, Open>
  | 'busy'
  | 'unknown';

export type AttemptStart<T extends { state: string }, Open extends T['state']> =
  | { started: true; record: T }
  | { started: false; reason: AttemptRefusalOf<T['state'], Open> };

/** Leased work of one kind on the ledger's table. Each write is conditioned as `AttemptWork` says. */
export interface AttemptLedger<Ref, T extends { state: string }, Open extends T['state']> {
  get(ref: Ref): Promise<T | undefined>;
  /** Takes the attempt's lease on an open item, counts the attempt and moves it on the open index. */
  begin(ref: Ref, leaseSeconds: number): Promise<AttemptStart<T, Open>>;
  /** Gives the lease back with the attempt's error; the item stays open for the stalled sweep. */
  end(ref: Ref, error: string): Promise<void>;
  /**
   * A verdict: `verdict`'s state and facts, written with the time, off the open index, and without the
   * leases a verdict ends. True for the caller whose write made it.
   */
  close(ref: Ref, operation: string, verdict: WriteParts): Promise<boolean>;
  /** Stalled open items: no progress since `before`, oldest first. */
  listStalled(before: Date, limit: number): Promise<T[]>;
  /** Marks a stalled item as re-sent; false if another sweep (or a worker) touched it first. */
  touchStalled(ref: Ref, seenUpdatedAt: string): Promise<boolean>;
}

/** The open states as a condition, `#state = :open0` or `#state IN (:open0, :open1, ...)`. */
function openStateParts(
  states: readonly string[],
): Required<Pick<WriteParts, 'condition' | 'names' | 'values'>> {
  const names = states.map((_, index) => `:open${index}`);
  return {
    condition: names.length === 1 ? `#state = ${names[0]}` : `#state IN (${names.join(', ')})`,
    names: stateName,
    values: Object.fromEntries(states.map((state, index) => [`:open${index}`, state])),
  };
}

/** The write that records progress: the time, and the matching place on the open index. */
function progress<Ref>(work: AttemptWork<Ref, string>, ref: Ref, updatedAt: string): WriteParts {
  return {
    set: ['updatedAt = :now', '#g1sk = :g1sk'],
    names: { '#g1sk': k.gsi1SortKey },
    values: { ':now': updatedAt, ':g1sk': work.openSortKey(updatedAt, ref) },
  };
}

async function begin<Ref, T extends { state: string }, Open extends T['state']>(
  table: LedgerTable,
  work: AttemptWork<Ref, Open>,
  ref: Ref,
  leaseSeconds: number,
): Promise<AttemptStart<T, Open>> {
  const now = table.clock();
  const key = work.key(ref);
  const open = openStateParts(work.openStates);
  const taken = await takeLease(
    table,
    work.operations.begin,
    key,
    { ...attemptLease, seconds: leaseSeconds, now },
    mergeWriteParts(progress(work, ref, now.toISOString()), {
      add: ['attempts :one'],
      condition: `attribute_exists(#pk) AND ${open.condition}`,
      names: { ...partitionKeyName, ...open.names },
      values: { ...open.values, ':one': 1 },
    }),
  );
  if (taken !== undefined) return { started: true, record: strip<T>(taken) };
  const current = await table.get(work.operations.begin, key);
  if (current === undefined) return { started: false, reason: 'unknown' };
  const state = current.state as T['state'];
  if ((work.openStates as readonly string[]).includes(state)) return { started: false, reason: 'busy' };
  return { started: false, reason: state as Exclude<T['state'], Open> };
}

async function end<Ref>(table: LedgerTable, work: AttemptWork<Ref, string>, ref: Ref, error: string) {
  const cause: WriteParts = {
    set: ['lastError = :error'],
    values: { ':error': error.slice(0, errorTextLimit) },
  };
  const updatedAt = table.clock().toISOString();
  const parts = mergeWriteParts(cause, progress(work, ref, updatedAt), openStateParts(work.openStates));
  await endLease(table, work.operations.end, work.key(ref), attemptLease, parts);
}

function close<Ref>(
  table: LedgerTable,
  work: AttemptWork<Ref, string>,
  ref: Ref,
  operation: string,
  verdict: WriteParts,
): Promise<boolean> {
  const ended: WriteParts = {
    set: ['updatedAt = :now'],
    remove: [...leasesEndedByVerdict, '#g1pk', '#g1sk'],
    names: { ...stateName, ...indexNames },
    values: { ':now': table.clock().toISOString() },
  };
  return table.update(operation, work.key(ref), mergeWriteParts(ended, verdict));
}

async function listStalled<T>(
  table: LedgerTable,
  work: AttemptWork<unknown, string>,
  before: Date,
  limit: number,
): Promise<T[]> {
  const query = {
    IndexName: k.gsi1Name,
    KeyConditionExpression: '#g1pk = :open AND #g1sk < :before',
    ExpressionAttributeNames: indexNames,
    ExpressionAttributeValues: { ':open': work.openIndex, ':before': before.toISOString() },
    Limit: limit,
  };
  const items = await table.query(work.operations.listStalled, query, limit);
  return items.filter((item) => work.stalled.holds(item)).map((item) => strip<T>(item));
}

function touchStalled<Ref>(
  table: LedgerTable,
  work: AttemptWork<Ref, string>,
  ref: Ref,
  seenUpdatedAt: string,
): Promise<boolean> {
  const stalled: WriteParts = {
    condition: `updatedAt = :seen AND (${work.stalled.condition})`,
    names: stateName,
    values: { ...work.stalled.values, ':seen': seenUpdatedAt },
  };
  const parts = mergeWriteParts(progress(work, ref, table.clock().toISOString()), stalled);
  return table.update(work.operations.touchStalled, work.key(ref), parts);
}

export function attemptLedger<Ref, T extends { state: string }, Open extends T['state']>(
  table: LedgerTable,
  work: AttemptWork<Ref, Open>,
): AttemptLedger<Ref, T, Open> {
  return {
    get: async (ref) => {
      const item = await table.get(work.operations.get, work.key(ref));
      return item === undefined ? undefined : strip<T>(item);
    },
    begin: (ref, leaseSeconds) => begin<Ref, T, Open>(table, work, ref, leaseSeconds),
    end: (ref, error) => end(table, work, ref, error),
    close: (ref, operation, verdict) => close(table, work, ref, operation, verdict),
    listStalled: (before, limit) => listStalled<T>(table, work, before, limit),
    touchStalled: (ref, seenUpdatedAt) => touchStalled(table, work, ref, seenUpdatedAt),
  };
}
