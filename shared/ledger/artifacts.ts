import { type LedgerTable, partitionKeyName } from './access.ts';
import {
  type AttemptLedger,
  type AttemptWork,
  attemptLedger,
  errorTextLimit,
  leasesEndedByVerdict,
} from './attempts.ts';
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
  streamKey,
} from './table.ts';

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

/** The open-artifact index entry of an artifact last touched at `updatedAt`: the stalled sweep's order. */
export function openArtifactEntry(updatedAt: string, ref: ArtifactRef): LedgerKey {
  return ledgerIndexEntry(ledgerIndex.openArtifacts, openSortKey(updatedAt, ref));
}

export function openSortKey(updatedAt: string, ref: ArtifactRef): string {
  return `${updatedAt}#${streamKey(ref)}#${ref.version}#${ref.artifact}`;
}

const stateName = { '#state': 'state' } as const;
const indexNames = { '#g1pk': k.gsi1PartitionKey, '#g1sk': k.gsi1SortKey } as const;

/** An artifact's attempts: open while pending, and while missing if it is required. */
const artifactWork: AttemptWork<ArtifactRef, 'pending' | 'missing'> = {
  key: ledgerItems.artifact,
  openSortKey,
  openIndex: ledgerIndex.openArtifacts,
  openStates: ['pending', 'missing'],
  stalled: {
    condition: '#state = :pending OR (#state = :missing AND required = :yes)',
    values: { ':pending': 'pending', ':missing': 'missing', ':yes': true },
    holds: (item) => item.state === 'pending' || (item.state === 'missing' && item.required === true),
  },
  operations: {
    get: 'get artifact',
    begin: 'begin attempt',
    end: 'end attempt',
    listStalled: 'list stalled',
    touchStalled: 'touch stalled',
  },
};

type ArtifactAttempts = AttemptLedger<ArtifactRef, ArtifactRecord, 'pending' | 'missing'>;

export function artifactLedger(table: LedgerTable): ArtifactLedger {
  const attempts: ArtifactAttempts = attemptLedger(table, artifactWork);
  return {
    getArtifact: attempts.get,
    beginAttempt: attempts.begin,
    endAttempt: attempts.end,
    markVerified: (ref, facts) => markVerified(attempts, ref, facts),
    markMissing: (ref, detail) => markMissing(table, attempts, ref, detail),
    markFailedVerification: (ref, reason) => markFailedVerification(attempts, ref, reason),
    listStalled: attempts.listStalled,
    touchStalled: attempts.touchStalled,
    requeueArtifact: (ref, from) => requeueArtifact(table, ref, from),
  };
}

function markVerified(
  attempts: ArtifactAttempts,
  ref: ArtifactRef,
  facts: VerifiedArtifactFacts,
): Promise<boolean> {
  return attempts.close(ref, 'mark verified', {
    set: [
      '#state = :verified',
      '#size = :size',
      'sha512 = :sha512',
      'signingKeyFingerprint = :skf',
      'primaryKeyFingerprint = :pkf',
      'signatureCreated = :sc',
      'hashAlgorithm = :ha',
    ],
    remove: ['lastError'],
    condition: 'attribute_exists(#pk) AND #state <> :verified',
    names: { ...partitionKeyName, '#size': 'size' },
    values: {
      ':verified': 'verified',
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
async function markMissing(
  table: LedgerTable,
  attempts: ArtifactAttempts,
  ref: ArtifactRef,
  detail: string,
): Promise<boolean> {
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
  if (!transitioned) await attempts.end(ref, detail);
  await table.update('close optional missing', key, {
    remove: ['#g1pk', '#g1sk'],
    condition: '#state = :missing AND required = :no',
    names: { ...stateName, ...indexNames },
    values: { ':missing': 'missing', ':no': false },
  });
  return transitioned;
}

function markFailedVerification(
  attempts: ArtifactAttempts,
  ref: ArtifactRef,
  reason: string,
): Promise<boolean> {
  return attempts.close(ref, 'mark failed', {
    set: ['#state = :failed', 'lastError = :reason'],
    condition: 'attribute_exists(#pk) AND #state <> :failed',
    names: partitionKeyName,
    values: { ':failed': 'failed_verification', ':reason': reason.slice(0, errorTextLimit) },
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
