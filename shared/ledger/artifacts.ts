import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { endLease, takeLease } from './lease.ts';
import type {
  ArtifactRecord,
  ArtifactRef,
  ArtifactState,
  AttemptRefusal,
  VerifiedArtifactFacts,
} from './records.ts';
import {
  ledgerKeySchema as k,
  type LedgerKey,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerLeases,
  streamKey,
} from './table.ts';

const attemptLease = ledgerLeases.attempt;
/** A verdict ends the attempt, and an alert owed for an earlier state. */
export const leasesEndedByVerdict: readonly string[] = [
  attemptLease.attribute,
  'alertedAt',
  ledgerLeases.alert.attribute,
];

/**
 * An artifact's life: attempts under a lease, the verdict (verified, missing, failed verification), and
 * the stalled sweep that sends open work again. Each verdict is conditioned on the state before it, so
 * only the caller that made the transition publishes its event.
 */
export interface ArtifactLedger {
  getArtifact(ref: ArtifactRef): Promise<ArtifactRecord | undefined>;
  beginAttempt(
    ref: ArtifactRef,
    leaseSeconds: number,
  ): Promise<{ started: true; record: ArtifactRecord } | { started: false; reason: AttemptRefusal }>;
  endAttempt(ref: ArtifactRef, error: string): Promise<void>;
  markVerified(ref: ArtifactRef, facts: VerifiedArtifactFacts): Promise<boolean>;
  markMissing(ref: ArtifactRef, detail: string): Promise<boolean>;
  markFailedVerification(ref: ArtifactRef, reason: string): Promise<boolean>;
  /** Open artifacts (pending, or missing and required) with no progress since `before`. */
  listStalled(before: Date, limit: number): Promise<ArtifactRecord[]>;
  /** Marks a stalled artifact as re-sent, so the next poll does not send it again at once. */
  touchStalled(ref: ArtifactRef, seenUpdatedAt: string): Promise<boolean>;
  /**
   * Puts an artifact in one of `from` back to pending, open for the stalled sweep; true if it moved. The
   * trust version of an awaiting-trust artifact is kept (see `ArtifactRecord.trustVersion`).
   */
  requeueArtifact(ref: ArtifactRef, from: ArtifactState[]): Promise<boolean>;
}

/** Longer error texts are cut, so a chatty upstream cannot grow an item towards DynamoDB's 400 KB. */
export const errorTextLimit = 1000;

/** The open-artifact index entry of an artifact last touched at `updatedAt`: the stalled sweep's order. */
export function openArtifactEntry(updatedAt: string, ref: ArtifactRef): LedgerKey {
  return ledgerIndexEntry(ledgerIndex.openArtifacts, openSortKey(updatedAt, ref));
}

export function openSortKey(updatedAt: string, ref: ArtifactRef): string {
  return `${updatedAt}#${streamKey(ref)}#${ref.version}#${ref.artifact}`;
}

const stateName = { '#state': 'state' } as const;
const indexNames = { '#g1pk': k.gsi1PartitionKey, '#g1sk': k.gsi1SortKey } as const;

export function artifactLedger(table: LedgerTable): ArtifactLedger {
  return {
    getArtifact: (ref) => getArtifact(table, ref),
    beginAttempt: (ref, leaseSeconds) => beginAttempt(table, ref, leaseSeconds),
    endAttempt: (ref, error) => endAttempt(table, ref, error),
    markVerified: (ref, facts) => markVerified(table, ref, facts),
    markMissing: (ref, detail) => markMissing(table, ref, detail),
    markFailedVerification: (ref, reason) => markFailedVerification(table, ref, reason),
    listStalled: (before, limit) => listStalled(table, before, limit),
    touchStalled: (ref, seenUpdatedAt) => touchStalled(table, ref, seenUpdatedAt),
    requeueArtifact: (ref, from) => requeueArtifact(table, ref, from),
  };
}

async function getArtifact(table: LedgerTable, ref: ArtifactRef): Promise<ArtifactRecord | undefined> {
  const item = await table.get('get artifact', ledgerItems.artifact(ref));
  return item === undefined ? undefined : strip<ArtifactRecord>(item);
}

async function beginAttempt(
  table: LedgerTable,
  ref: ArtifactRef,
  leaseSeconds: number,
): ReturnType<ArtifactLedger['beginAttempt']> {
  const now = table.clock();
  const updatedAt = now.toISOString();
  const key = ledgerItems.artifact(ref);
  const taken = await takeLease(
    table,
    'begin attempt',
    key,
    { ...attemptLease, seconds: leaseSeconds, now },
    {
      set: ['updatedAt = :now', '#g1sk = :g1sk'],
      add: ['attempts :one'],
      condition: 'attribute_exists(#pk) AND #state IN (:pending, :missing)',
      names: { ...partitionKeyName, ...stateName, '#g1sk': k.gsi1SortKey },
      values: {
        ':now': updatedAt,
        ':g1sk': openSortKey(updatedAt, ref),
        ':one': 1,
        ':pending': 'pending',
        ':missing': 'missing',
      },
    },
  );
  if (taken !== undefined) return { started: true, record: strip<ArtifactRecord>(taken) };
  const current = await table.get('begin attempt', key);
  if (current === undefined) return { started: false, reason: 'unknown' };
  const state = current.state as ArtifactState;
  if (state === 'verified' || state === 'failed_verification' || state === 'awaiting_trust') {
    return { started: false, reason: state };
  }
  return { started: false, reason: 'busy' };
}

async function endAttempt(table: LedgerTable, ref: ArtifactRef, error: string): Promise<void> {
  const updatedAt = table.clock().toISOString();
  await endLease(table, 'end attempt', ledgerItems.artifact(ref), attemptLease, {
    set: ['lastError = :error', 'updatedAt = :now', '#g1sk = :g1sk'],
    condition: '#state IN (:pending, :missing)',
    names: { ...stateName, '#g1sk': k.gsi1SortKey },
    values: {
      ':error': error.slice(0, errorTextLimit),
      ':now': updatedAt,
      ':g1sk': openSortKey(updatedAt, ref),
      ':pending': 'pending',
      ':missing': 'missing',
    },
  });
}

function markVerified(table: LedgerTable, ref: ArtifactRef, facts: VerifiedArtifactFacts): Promise<boolean> {
  return table.update('mark verified', ledgerItems.artifact(ref), {
    set: [
      '#state = :verified',
      'updatedAt = :now',
      '#size = :size',
      'sha512 = :sha512',
      'signingKeyFingerprint = :skf',
      'primaryKeyFingerprint = :pkf',
      'signatureCreated = :sc',
      'hashAlgorithm = :ha',
    ],
    remove: [...leasesEndedByVerdict, 'lastError', '#g1pk', '#g1sk'],
    condition: 'attribute_exists(#pk) AND #state <> :verified',
    names: { ...partitionKeyName, ...stateName, '#size': 'size', ...indexNames },
    values: {
      ':verified': 'verified',
      ':now': table.clock().toISOString(),
      ':size': facts.size,
      ':sha512': facts.sha512,
      ':skf': facts.signingKeyFingerprint,
      ':pkf': facts.primaryKeyFingerprint,
      ':sc': facts.signatureCreated,
      ':ha': facts.hashAlgorithm,
    },
  });
}

/**
 * Two writes: the state, then taking an optional artifact out of the open index. A retry after a partial
 * failure finds the state set and still does the second write.
 */
async function markMissing(table: LedgerTable, ref: ArtifactRef, detail: string): Promise<boolean> {
  const updatedAt = table.clock().toISOString();
  const key = ledgerItems.artifact(ref);
  const transitioned = await table.update('mark missing', key, {
    set: ['#state = :missing', 'updatedAt = :now', 'lastError = :detail', '#g1sk = :g1sk'],
    remove: leasesEndedByVerdict,
    condition: '#state = :pending',
    names: { ...stateName, '#g1sk': k.gsi1SortKey },
    values: {
      ':missing': 'missing',
      ':pending': 'pending',
      ':now': updatedAt,
      ':detail': detail.slice(0, errorTextLimit),
      ':g1sk': openSortKey(updatedAt, ref),
    },
  });
  if (!transitioned) await endAttempt(table, ref, detail);
  await table.update('close optional missing', key, {
    remove: ['#g1pk', '#g1sk'],
    condition: '#state = :missing AND required = :no',
    names: { ...stateName, ...indexNames },
    values: { ':missing': 'missing', ':no': false },
  });
  return transitioned;
}

function markFailedVerification(table: LedgerTable, ref: ArtifactRef, reason: string): Promise<boolean> {
  return table.update('mark failed', ledgerItems.artifact(ref), {
    set: ['#state = :failed', 'updatedAt = :now', 'lastError = :reason'],
    remove: [...leasesEndedByVerdict, '#g1pk', '#g1sk'],
    condition: 'attribute_exists(#pk) AND #state <> :failed',
    names: { ...partitionKeyName, ...stateName, ...indexNames },
    values: {
      ':failed': 'failed_verification',
      ':now': table.clock().toISOString(),
      ':reason': reason.slice(0, errorTextLimit),
    },
  });
}

async function listStalled(table: LedgerTable, before: Date, limit: number): Promise<ArtifactRecord[]> {
  const items = await table.query(
    'list stalled',
    {
      IndexName: k.gsi1Name,
      KeyConditionExpression: '#g1pk = :open AND #g1sk < :before',
      ExpressionAttributeNames: indexNames,
      ExpressionAttributeValues: { ':open': ledgerIndex.openArtifacts, ':before': before.toISOString() },
      Limit: limit,
    },
    limit,
  );
  return items
    .map((item) => strip<ArtifactRecord>(item))
    .filter((record) => record.state === 'pending' || (record.state === 'missing' && record.required));
}

function touchStalled(table: LedgerTable, ref: ArtifactRef, seenUpdatedAt: string): Promise<boolean> {
  const updatedAt = table.clock().toISOString();
  return table.update('touch stalled', ledgerItems.artifact(ref), {
    set: ['updatedAt = :now', '#g1sk = :g1sk'],
    condition: 'updatedAt = :seen AND (#state = :pending OR (#state = :missing AND required = :yes))',
    names: { ...stateName, '#g1sk': k.gsi1SortKey },
    values: {
      ':now': updatedAt,
      ':seen': seenUpdatedAt,
      ':g1sk': openSortKey(updatedAt, ref),
      ':pending': 'pending',
      ':missing': 'missing',
      ':yes': true,
    },
  });
}

function requeueArtifact(table: LedgerTable, ref: ArtifactRef, from: ArtifactState[]): Promise<boolean> {
  const updatedAt = table.clock().toISOString();
  const names = from.map((_, index) => `:from${index}`);
  const values = Object.fromEntries(from.map((state, index) => [`:from${index}`, state]));
  return table.update('requeue artifact', ledgerItems.artifact(ref), {
    set: ['#state = :pending', 'updatedAt = :now', '#g1pk = :open', '#g1sk = :g1sk'],
    remove: [...leasesEndedByVerdict, 'awaitingIssuer'],
    condition: `#state IN (${names.join(', ')})`,
    names: { ...stateName, ...indexNames },
    values: {
      ...values,
      ':pending': 'pending',
      ':now': updatedAt,
      ':open': ledgerIndex.openArtifacts,
      ':g1sk': openSortKey(updatedAt, ref),
    },
  });
}
