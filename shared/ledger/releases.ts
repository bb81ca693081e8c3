import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { openArtifactEntry } from './artifacts.ts';
import { endLease, takeLease } from './lease.ts';
import type {
  ArtifactPlan,
  ArtifactRecord,
  ReleaseDetail,
  ReleaseRecord,
  ReleaseRef,
  StreamRef,
} from './records.ts';
import {
  ledgerKeySchema as k,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerKindAttribute,
  ledgerLeases,
  streamKey,
} from './table.ts';
import { versionSortKey } from './versions.ts';

/**
 * Releases: the claim that makes one poller the one to send a release's jobs, and the finalize that makes
 * one worker the one to publish it once its artifacts are done.
 */
export interface ReleaseLedger {
  /** Creates the release's artifacts (pending), then claims the release; true for the one caller that did. */
  claimRelease(release: ReleaseRef, artifacts: ArtifactPlan[]): Promise<boolean>;
  getRelease(release: ReleaseRef): Promise<ReleaseDetail | undefined>;
  /**
   * Claimed releases, oldest version first per stream; each part of `filter` given narrows the list. A
   * release retention is pruning is not among them.
   */
  listReleases(filter?: Partial<StreamRef>): Promise<ReleaseRecord[]>;
  /**
   * Hands the finalize to exactly one caller, once every required artifact is verified and every optional
   * one is verified, missing or failed. A release finalized but not yet announced is handed out again.
   */
  beginFinalize(release: ReleaseRef, leaseSeconds: number): Promise<ReleaseDetail | undefined>;
  /** Sets `finalizedAt` and leaves the announcement owed; false if another caller finalized first. */
  completeFinalize(release: ReleaseRef): Promise<boolean>;
  abandonFinalize(release: ReleaseRef): Promise<void>;
}

/** The finalize lease of a release item; `recordAnnounced` gives it back with the announcement. */
const finalizeLease = ledgerLeases.finalize;

/** A release still owes its finalize work or its announcement. */
const finalizeOwed = 'attribute_not_exists(finalizedAt) OR attribute_exists(announcePending)';

function isDone(detail: ReleaseDetail): boolean {
  return detail.artifacts.every((name) => {
    const record = detail.artifactStates.find((a) => a.artifact === name);
    if (record === undefined) return false;
    if (record.state === 'verified') return true;
    return (record.state === 'missing' || record.state === 'failed_verification') && !record.required;
  });
}

export function releaseLedger(table: LedgerTable): ReleaseLedger {
  return {
    claimRelease: (release, artifacts) => claimRelease(table, release, artifacts),
    getRelease: (release) => getRelease(table, release),
    listReleases: (filter) => listReleaseIndex(table, 'list releases', ledgerIndex.releases, filter ?? {}),
    beginFinalize: (release, leaseSeconds) => beginFinalize(table, release, leaseSeconds),
    completeFinalize: (release) =>
      table.update('complete finalize', ledgerItems.release(release), {
        set: ['finalizedAt = :now', 'announcePending = :yes'],
        condition: 'attribute_not_exists(finalizedAt)',
        values: { ':now': table.clock().toISOString(), ':yes': true },
      }),
    abandonFinalize: async (release) => {
      await endLease(table, 'abandon finalize', ledgerItems.release(release), finalizeLease, {
        condition: finalizeOwed,
      });
    },
  };
}

/** The artifacts go first, so a poller that dies after the claim leaves work the stall sweep finds. */
async function claimRelease(
  table: LedgerTable,
  release: ReleaseRef,
  artifacts: ArtifactPlan[],
): Promise<boolean> {
  const now = table.clock().toISOString();
  const absent = { condition: 'attribute_not_exists(#pk)', names: partitionKeyName };
  for (const plan of artifacts) {
    const ref = { ...release, artifact: plan.name };
    const item = {
      ...ledgerItems.artifact(ref),
      ...openArtifactEntry(now, ref),
      [ledgerKindAttribute]: 'artifact',
      ...ref,
      required: plan.required,
      state: 'pending',
      attempts: 0,
      url: plan.url,
      signatureUrl: plan.signatureUrl,
      updatedAt: now,
    };
    await table.put('create artifact', item, absent);
  }
  const head = {
    ...ledgerItems.release(release),
    ...ledgerIndexEntry(ledgerIndex.releases, `${streamKey(release)}#${versionSortKey(release.version)}`),
    [ledgerKindAttribute]: 'release',
    ...release,
    claimedAt: now,
    artifacts: artifacts.map((a) => a.name),
    required: artifacts.filter((a) => a.required).map((a) => a.name),
  };
  return table.put('claim release', head, absent);
}

async function getRelease(table: LedgerTable, release: ReleaseRef): Promise<ReleaseDetail | undefined> {
  const key = ledgerItems.release(release);
  const items = await table.query('get release', {
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: partitionKeyName,
    ExpressionAttributeValues: { ':pk': key[k.partitionKey] },
    ConsistentRead: true,
  });
  const head = items.find((item) => item[k.sortKey] === key[k.sortKey]);
  if (head === undefined) return undefined;
  const artifactStates = items
    .filter((item) => ledgerItems.isArtifactSortKey(item[k.sortKey]))
    .map((item) => strip<ArtifactRecord>(item));
  return { ...strip<ReleaseRecord>(head), artifactStates };
}

/**
 * The release records listed in one index partition (`partition`: the listed releases, or those being
 * pruned), queried by the longest given leading part of `source#channel#board`; the rest is filtered.
 */
export async function listReleaseIndex(
  table: LedgerTable,
  operation: string,
  partition: string,
  filter: Partial<StreamRef>,
): Promise<ReleaseRecord[]> {
  const parts = [filter.source, filter.channel, filter.board];
  const given = parts.indexOf(undefined);
  const leading = (given === -1 ? parts : parts.slice(0, given)) as string[];
  const prefix = leading.map((part) => `${part}#`).join('');
  const items = await table.query(operation, {
    IndexName: k.gsi1Name,
    KeyConditionExpression: prefix === '' ? '#g1pk = :r' : '#g1pk = :r AND begins_with(#g1sk, :prefix)',
    ExpressionAttributeNames: {
      '#g1pk': k.gsi1PartitionKey,
      ...(prefix === '' ? {} : { '#g1sk': k.gsi1SortKey }),
    },
    ExpressionAttributeValues: {
      ':r': partition,
      ...(prefix === '' ? {} : { ':prefix': prefix }),
    },
  });
  return items
    .map((item) => strip<ReleaseRecord>(item))
    .filter(
      (r) =>
        (filter.channel === undefined || r.channel === filter.channel) &&
        (filter.board === undefined || r.board === filter.board),
    );
}

async function beginFinalize(
  table: LedgerTable,
  release: ReleaseRef,
  leaseSeconds: number,
): Promise<ReleaseDetail | undefined> {
  const detail = await getRelease(table, release);
  if (detail === undefined) return undefined;
  if (detail.finalizedAt !== undefined && detail.announcePending !== true) return undefined;
  if (!isDone(detail)) return undefined;
  const won = await takeLease(
    table,
    'begin finalize',
    ledgerItems.release(release),
    { ...finalizeLease, seconds: leaseSeconds },
    { condition: `attribute_exists(#pk) AND (${finalizeOwed})`, names: partitionKeyName },
  );
  return won === undefined ? undefined : detail;
}
