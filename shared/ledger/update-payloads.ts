import {
  MAIN_UPDATE_PAYLOAD,
  type UpdatePayloadLookup,
  type UpdatePayloadRecord,
} from '../update/payload-record.ts';
import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { type AttemptLedger, type AttemptWork, attemptLedger, errorTextLimit } from './attempts.ts';
import { endLease, takeLease } from './lease.ts';
import type { StreamRef } from './records.ts';
import * as ledgerTable from './table.ts';

const k = ledgerTable.ledgerKeySchema;

export type UpdatePayloadState = 'pending' | 'verified' | 'missing' | 'failed_verification';

export interface UpdatePayloadRef {
  board: string;
  version: string;
  name: string;
}

/** An update payload's item: its plan, its attempts, and once verified, the facts an Omaha answer names. */
export interface UpdatePayloadItem
  extends UpdatePayloadRef,
    Partial<Omit<UpdatePayloadRecord, keyof UpdatePayloadRef>> {
  /** The source and channel whose poll planned it; the alert of a refused payload is raised on them. */
  source: string;
  channel: string;
  state: UpdatePayloadState;
  attempts: number;
  updatedAt: string;
  lastError?: string;
  leaseUntil?: string;
  /** When the refusal's alert went out; unset while it is owed. */
  alertedAt?: string;
  /** SHA-256 of the key that verified the embedded signature (hex, of its SubjectPublicKeyInfo). */
  signingKey?: string;
}

export type PayloadAttemptRefusal = 'verified' | 'failed_verification' | 'missing' | 'busy' | 'unknown';

/**
 * The update payloads' part of the ledger: planned once per board and version (however many channels
 * name the version), leased per attempt, then verified, missing or refused. Only verified payloads are
 * ever returned by `payloadsFor`, the read side of the Omaha endpoint.
 */
export interface UpdatePayloadLedger extends UpdatePayloadLookup {
  /** Plans the payloads of a release; returns the names planned by this call (the ones to send jobs for). */
  planPayloads(stream: StreamRef, version: string, names: readonly string[]): Promise<string[]>;
  getPayload(ref: UpdatePayloadRef): Promise<UpdatePayloadItem | undefined>;
  beginPayload(
    ref: UpdatePayloadRef,
    leaseSeconds: number,
  ): Promise<{ started: true; item: UpdatePayloadItem } | { started: false; reason: PayloadAttemptRefusal }>;
  endPayloadAttempt(ref: UpdatePayloadRef, error: string): Promise<void>;
  /** True for the caller whose write made it verified. */
  markPayloadVerified(record: UpdatePayloadRecord, signingKey: string): Promise<boolean>;
  markPayloadMissing(ref: UpdatePayloadRef, detail: string): Promise<boolean>;
  /** True for the caller whose write refused it. */
  markPayloadFailed(ref: UpdatePayloadRef, reason: string): Promise<boolean>;
  /** The right to publish a refused payload's alert for a short while; false if sent or held. */
  claimPayloadAlert(ref: UpdatePayloadRef, leaseSeconds: number): Promise<boolean>;
  releasePayloadAlert(ref: UpdatePayloadRef): Promise<void>;
  /** Records that the refusal's alert went out; true for the one caller whose write made it. */
  recordPayloadAlert(ref: UpdatePayloadRef): Promise<boolean>;
  /** Planned payloads with no progress since `before`, for the stalled sweep. */
  listStalledPayloads(before: Date, limit: number): Promise<UpdatePayloadItem[]>;
  /** Marks a stalled payload as re-sent; false if another sweep (or a worker) touched it first. */
  touchStalledPayload(ref: UpdatePayloadRef, seenUpdatedAt: string): Promise<boolean>;
}

const stateName = { '#state': 'state' } as const;
const alertLease = ledgerTable.ledgerLeases.alert;

function keyOf(ref: UpdatePayloadRef) {
  return ledgerTable.ledgerItems.updatePayload(ref.board, ref.version, ref.name);
}

function openSortKey(updatedAt: string, ref: UpdatePayloadRef): string {
  return `${updatedAt}#${ref.board}#${ref.version}#${ref.name}`;
}

/** The record as the contract has it, from a verified item. */
function recordOf(item: UpdatePayloadItem): UpdatePayloadRecord | undefined {
  const { key, size, sha1Base64, sha256Hex, verifiedAt } = item;
  if (key === undefined || size === undefined || sha1Base64 === undefined || sha256Hex === undefined) {
    return undefined;
  }
  if (verifiedAt === undefined) return undefined;
  return {
    board: item.board,
    version: item.version,
    name: item.name,
    key,
    size,
    sha1Base64,
    sha256Hex,
    verifiedAt,
  };
}

/** A payload's attempts: open only while pending (a missing payload is a verdict, not a retry). */
const payloadWork: AttemptWork<UpdatePayloadRef, 'pending'> = {
  key: keyOf,
  openSortKey,
  openIndex: ledgerTable.ledgerIndex.openUpdatePayloads,
  openStates: ['pending'],
  stalled: {
    condition: '#state = :pending',
    values: { ':pending': 'pending' },
    holds: (item) => item.state === 'pending',
  },
  operations: {
    get: 'get update payload',
    begin: 'begin update payload',
    end: 'end update payload attempt',
    listStalled: 'list stalled update payloads',
    touchStalled: 'touch stalled update payload',
  },
};

type PayloadAttempts = AttemptLedger<UpdatePayloadRef, UpdatePayloadItem, 'pending'>;

export function updatePayloadLedger(table: LedgerTable): UpdatePayloadLedger {
  const attempts: PayloadAttempts = attemptLedger(table, payloadWork);
  return {
    planPayloads: (stream, version, names) => planPayloads(table, stream, version, names),
    getPayload: attempts.get,
    beginPayload: async (ref, leaseSeconds) => {
      const attempt = await attempts.begin(ref, leaseSeconds);
      return attempt.started ? { started: true, item: attempt.record } : attempt;
    },
    endPayloadAttempt: attempts.end,
    markPayloadVerified: (record, signingKey) => markPayloadVerified(attempts, record, signingKey),
    markPayloadMissing: (ref, detail) =>
      verdict(attempts, ref, 'mark update payload missing', 'missing', detail),
    markPayloadFailed: (ref, reason) =>
      verdict(attempts, ref, 'mark update payload failed', 'failed_verification', reason),
    claimPayloadAlert: (ref, leaseSeconds) => claimPayloadAlert(table, ref, leaseSeconds),
    releasePayloadAlert: (ref) => releasePayloadAlert(table, ref),
    recordPayloadAlert: (ref) => recordPayloadAlert(table, ref),
    listStalledPayloads: attempts.listStalled,
    touchStalledPayload: attempts.touchStalled,
    payloadsFor: (board, version) => payloadsFor(table, board, version),
  };
}

const nowIso = (table: LedgerTable) => table.clock().toISOString();

async function planPayloads(
  table: LedgerTable,
  stream: StreamRef,
  version: string,
  names: readonly string[],
): Promise<string[]> {
  const now = nowIso(table);
  const release = { board: stream.board, version };
  const planned: string[] = [];
  for (const name of names) {
    const ref = { ...release, name };
    const created = await table.put(
      'plan update payload',
      {
        ...keyOf(ref),
        ...ledgerTable.ledgerIndexEntry(ledgerTable.ledgerIndex.openUpdatePayloads, openSortKey(now, ref)),
        [ledgerTable.ledgerKindAttribute]: 'update-payload',
        ...ref,
        source: stream.source,
        channel: stream.channel,
        state: 'pending',
        attempts: 0,
        plannedAt: now,
        updatedAt: now,
      },
      { condition: 'attribute_not_exists(#pk)', names: partitionKeyName },
    );
    if (created) planned.push(name);
  }
  return planned;
}

function markPayloadVerified(
  attempts: PayloadAttempts,
  record: UpdatePayloadRecord,
  signingKey: string,
): Promise<boolean> {
  return attempts.close(record, 'mark update payload verified', {
    set: [
      '#state = :verified',
      '#key = :key',
      '#size = :size',
      'sha1Base64 = :sha1',
      'sha256Hex = :sha256',
      'verifiedAt = :verifiedAt',
      'signingKey = :signingKey',
    ],
    remove: ['lastError'],
    condition: '#state = :pending',
    names: { '#key': 'key', '#size': 'size' },
    values: {
      ':verified': 'verified',
      ':pending': 'pending',
      ':key': record.key,
      ':size': record.size,
      ':sha1': record.sha1Base64,
      ':sha256': record.sha256Hex,
      ':verifiedAt': record.verifiedAt,
      ':signingKey': signingKey,
    },
  });
}

/** A refusing verdict on a pending payload, with its reason. */
function verdict(
  attempts: PayloadAttempts,
  ref: UpdatePayloadRef,
  operation: string,
  state: UpdatePayloadState,
  detail: string,
): Promise<boolean> {
  return attempts.close(ref, operation, {
    set: ['#state = :state', 'lastError = :detail'],
    condition: '#state = :pending',
    values: { ':state': state, ':pending': 'pending', ':detail': detail.slice(0, errorTextLimit) },
  });
}

const alertOwed = '#state = :failed AND attribute_not_exists(alertedAt)';

async function claimPayloadAlert(
  table: LedgerTable,
  ref: UpdatePayloadRef,
  leaseSeconds: number,
): Promise<boolean> {
  const taken = await takeLease(
    table,
    'claim update payload alert',
    keyOf(ref),
    { ...alertLease, seconds: leaseSeconds },
    { condition: alertOwed, names: stateName, values: { ':failed': 'failed_verification' } },
  );
  return taken !== undefined;
}

async function releasePayloadAlert(table: LedgerTable, ref: UpdatePayloadRef): Promise<void> {
  await endLease(table, 'release update payload alert', keyOf(ref), alertLease, {
    condition: 'attribute_not_exists(alertedAt)',
  });
}

function recordPayloadAlert(table: LedgerTable, ref: UpdatePayloadRef): Promise<boolean> {
  return endLease(table, 'record update payload alert', keyOf(ref), alertLease, {
    set: ['alertedAt = :now'],
    condition: alertOwed,
    names: stateName,
    values: { ':now': nowIso(table), ':failed': 'failed_verification' },
  });
}

/** Verified payloads only, main first, then by name: a strongly consistent query of the partition. */
async function payloadsFor(
  table: LedgerTable,
  board: string,
  version: string,
): Promise<UpdatePayloadRecord[]> {
  const items = await table.query('list update payloads', {
    KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
    ExpressionAttributeNames: { ...partitionKeyName, '#sk': k.sortKey },
    ExpressionAttributeValues: {
      ':pk': ledgerTable.updatePayloadKeyParts.partition(board, version),
      ':prefix': ledgerTable.updatePayloadKeyParts.sortPrefix,
    },
    ConsistentRead: true,
  });
  const records = items
    .map((item) => strip<UpdatePayloadItem>(item))
    .filter((item) => item.state === 'verified')
    .flatMap((item) => {
      const record = recordOf(item);
      return record === undefined ? [] : [record];
    });
  const rank = (record: UpdatePayloadRecord) => (record.name === MAIN_UPDATE_PAYLOAD ? 0 : 1);
  return records.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}
