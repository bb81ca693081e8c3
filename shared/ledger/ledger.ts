import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  artifactSk,
  artifactSkPrefix,
  currentPk,
  currentSyncSk,
  isConditionFailure,
  k,
  openArtifacts,
  openSk,
  pollIndex,
  pollPk,
  releaseIndex,
  releasePk,
  releaseSk,
  strip,
  wrap,
} from './items.ts';
import { trustWaitOperations } from './trust-wait.ts';
import { versionSortKey } from './versions.ts';

/**
 * `awaiting_trust`: refused only because the signer is not in the keyring (yet). It is not a verdict: the
 * next poll after the trust changes sends it again.
 */
export type ArtifactState = 'pending' | 'verified' | 'missing' | 'failed_verification' | 'awaiting_trust';

export interface ReleaseRef {
  channel: string;
  board: string;
  version: string;
}

export interface ArtifactRef extends ReleaseRef {
  artifact: string;
}

/** What the poller knows about an artifact when it claims a release; kept so stalled jobs can be re-sent. */
export interface ArtifactPlan {
  name: string;
  required: boolean;
  url: string;
  signatureUrl: string;
}

/** The facts a good signature and the stream established; they become the artifact's entry in release.json. */
export interface VerifiedArtifactFacts {
  size: number;
  sha512: string;
  signingKeyFingerprint: string;
  primaryKeyFingerprint: string;
  signatureCreated: string;
  hashAlgorithm: string;
}

export interface ArtifactRecord extends ArtifactRef, Partial<VerifiedArtifactFacts> {
  required: boolean;
  state: ArtifactState;
  attempts: number;
  url: string;
  signatureUrl: string;
  lastError?: string;
  /** While set and in the future, a worker holds the artifact; others back off. */
  leaseUntil?: string;
  /**
   * When the alert for the current terminal state (missing, failed_verification) went out. Unset while the
   * alert is owed, so a retry after a lost ledger response still publishes it.
   */
  alertedAt?: string;
  /** While awaiting trust: the signer's key ID. */
  awaitingIssuer?: string;
  /**
   * The trust version of the last refusal for an unknown signer; kept when the artifact is sent again, so
   * the worker knows its keyring may be older than the trust that made the poller send it.
   */
  trustVersion?: string;
  updatedAt: string;
}

/** The artifact states that raise an alert once reached. */
export type AlertState = 'missing' | 'failed_verification';

export interface ReleaseRecord extends ReleaseRef {
  claimedAt: string;
  artifacts: string[];
  required: string[];
  finalizedAt?: string;
  finalizeLeaseUntil?: string;
  /**
   * Set with `finalizedAt` and removed once `release.mirrored` went out: the finalize work is done but the
   * announcement is still owed, so the next finalize attempt only publishes.
   */
  announcePending?: boolean;
  announcedAt?: string;
}

export interface ReleaseDetail extends ReleaseRecord {
  artifactStates: ArtifactRecord[];
}

export interface PollState {
  channel: string;
  board: string;
  etag?: string;
  lastModified?: string;
  lastVersion?: string;
  checkedAt: string;
  /** Set while `current/version.txt` answers 404: since when, so the warning goes out once. */
  notPublishedSince?: string;
}

export interface MirrorCurrent {
  channel: string;
  board: string;
  version: string;
  updatedAt: string;
}

/** Why `beginAttempt` did not hand out the artifact. */
export type AttemptRefusal = 'verified' | 'failed_verification' | 'awaiting_trust' | 'busy' | 'unknown';

/**
 * The mirror's memory. Every transition that must happen once (claim, verified, missing, failed, finalize,
 * current moving forward, a daily key warning) is a conditional write, so concurrent pollers and workers
 * and redelivered messages cannot double any effect. Methods that make a transition return whether this
 * caller made it; only that caller publishes the matching event.
 */
export interface Ledger {
  claimRelease(release: ReleaseRef, artifacts: ArtifactPlan[]): Promise<boolean>;
  getArtifact(ref: ArtifactRef): Promise<ArtifactRecord | undefined>;
  beginAttempt(
    ref: ArtifactRef,
    leaseSeconds: number,
  ): Promise<{ started: true; record: ArtifactRecord } | { started: false; reason: AttemptRefusal }>;
  endAttempt(ref: ArtifactRef, error: string): Promise<void>;
  markVerified(ref: ArtifactRef, facts: VerifiedArtifactFacts): Promise<boolean>;
  markMissing(ref: ArtifactRef, detail: string): Promise<boolean>;
  markFailedVerification(ref: ArtifactRef, reason: string): Promise<boolean>;
  /**
   * Records that the alert for `state` went out; true for the one caller whose write made it. Called after
   * publishing, so a crash in between repeats the alert rather than losing it.
   */
  recordAlert(ref: ArtifactRef, state: AlertState): Promise<boolean>;
  /**
   * Takes the right to publish the alert for `state` for a short while, so two deliveries of one job do not
   * both publish; false if it was recorded already, is held by another caller, or the state is another.
   */
  claimAlert(ref: ArtifactRef, state: AlertState, leaseSeconds: number): Promise<boolean>;
  /** Gives the alert back after a failed publish, so the retry need not wait for the claim to run out. */
  releaseAlert(ref: ArtifactRef): Promise<void>;
  /**
   * Hands the finalize to exactly one caller, once every required artifact is verified and every optional
   * one is verified, missing or failed. A release finalized but not yet announced is handed out again.
   */
  beginFinalize(release: ReleaseRef, leaseSeconds: number): Promise<ReleaseDetail | undefined>;
  /** Sets `finalizedAt` and leaves the announcement owed; false if another caller finalized first. */
  completeFinalize(release: ReleaseRef): Promise<boolean>;
  /** Records that `release.mirrored` went out and releases the finalize lease. */
  recordAnnounced(release: ReleaseRef): Promise<boolean>;
  abandonFinalize(release: ReleaseRef): Promise<void>;
  /** Moves the mirror's current version of a channel and board, never backwards. */
  advanceCurrent(release: ReleaseRef): Promise<boolean>;
  getCurrent(channel: string, board: string): Promise<MirrorCurrent | undefined>;
  /**
   * A short lease per channel and board that serialises writes of the store's `current/` files, so an older
   * finalize cannot write its file after a newer one. True if `holder` now holds it.
   */
  acquireCurrentSync(channel: string, board: string, holder: string, leaseSeconds: number): Promise<boolean>;
  releaseCurrentSync(channel: string, board: string, holder: string): Promise<void>;
  getPollState(channel: string, board: string): Promise<PollState | undefined>;
  savePollState(state: PollState): Promise<void>;
  listPollStates(): Promise<PollState[]>;
  /** Open artifacts (pending, or missing and required) with no progress since `before`. */
  listStalled(before: Date, limit: number): Promise<ArtifactRecord[]>;
  /** Marks a stalled artifact as re-sent, so the next poll does not send it again at once. */
  touchStalled(ref: ArtifactRef, seenUpdatedAt: string): Promise<boolean>;
  /** True for the first caller of the day per key: the expiry warning goes out once a day. */
  recordKeyWarning(fingerprint: string, day: string): Promise<boolean>;
  listReleases(channel?: string, board?: string): Promise<ReleaseRecord[]>;
  /**
   * Releases claimed in [`since`, `before`) whose `release.mirrored` has not gone out: the poller's sweep
   * retries their finalize, so a finalizer that died with the lease held (or whose abandon failed) strands
   * nothing.
   */
  listUnannounced(since: Date, before: Date, limit: number): Promise<ReleaseRef[]>;
  getRelease(release: ReleaseRef): Promise<ReleaseDetail | undefined>;
  /** Parks an artifact being attempted until the trust changes; false if it was not pending or missing. */
  markAwaitingTrust(ref: ArtifactRef, wait: AwaitingTrust): Promise<boolean>;
  listAwaitingTrust(limit: number): Promise<ArtifactRecord[]>;
  /**
   * Puts an artifact in one of `from` back to pending, open for the stalled sweep; true if it moved. The
   * trust version of an awaiting-trust artifact is kept (see `ArtifactRecord.trustVersion`).
   */
  requeueArtifact(ref: ArtifactRef, from: ArtifactState[]): Promise<boolean>;
  /** True for the first caller per signer and trust version: the awaiting-trust alert goes out once. */
  claimTrustAlert(issuer: string, trustVersion: string): Promise<boolean>;
  /** Gives the claim back after a failed publish, so the redelivered job publishes. */
  releaseTrustAlert(issuer: string, trustVersion: string): Promise<void>;
}

/** What a refusal for an unknown signer leaves in the ledger. */
export interface AwaitingTrust {
  /** The signer's key ID (or fingerprint), as the signature names it. */
  issuer: string;
  /** The trust version that did not know it; a later version sends the artifact again. */
  trustVersion: string;
  detail: string;
}

export interface DynamoLedgerOptions {
  clock?: () => Date;
}

/** The ledger on DynamoDB (or dynalite), single table, keys from `ledgerKeySchema`. */
export function createDynamoLedger(
  doc: DynamoDBDocumentClient,
  tableName: string,
  options: DynamoLedgerOptions = {},
): Ledger {
  const clock = options.clock ?? (() => new Date());
  const nowIso = () => clock().toISOString();

  async function conditional(operation: string, run: () => Promise<unknown>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      return wrap(operation, error);
    }
  }

  /** Every page of a query, or pages until `limit` items have come back (then exactly `limit`). */
  async function queryAll(
    input: Omit<QueryCommandInput, 'TableName'>,
    operation = 'query',
    limit = Number.POSITIVE_INFINITY,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      let page: { Items?: Record<string, unknown>[]; LastEvaluatedKey?: Record<string, unknown> };
      try {
        page = await doc.send(
          new QueryCommand({ ...input, TableName: tableName, ExclusiveStartKey: startKey }),
        );
      } catch (error) {
        return wrap(operation, error);
      }
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && items.length < limit);
    return items.slice(0, limit);
  }

  async function getItem(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
    try {
      const out = await doc.send(
        new GetCommand({
          TableName: tableName,
          Key: { [k.partitionKey]: pk, [k.sortKey]: sk },
          ConsistentRead: true,
        }),
      );
      return out.Item;
    } catch (error) {
      return wrap('get', error);
    }
  }

  const artifactKey = (ref: ArtifactRef) => ({
    [k.partitionKey]: releasePk(ref),
    [k.sortKey]: artifactSk(ref.artifact),
  });
  const releaseKey = (ref: ReleaseRef) => ({ [k.partitionKey]: releasePk(ref), [k.sortKey]: releaseSk });

  async function getRelease(release: ReleaseRef): Promise<ReleaseDetail | undefined> {
    const items = await queryAll({
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': k.partitionKey },
      ExpressionAttributeValues: { ':pk': releasePk(release) },
      ConsistentRead: true,
    });
    const head = items.find((item) => item[k.sortKey] === releaseSk);
    if (head === undefined) return undefined;
    const artifactStates = items
      .filter((item) => String(item[k.sortKey]).startsWith(artifactSkPrefix))
      .map((item) => strip<ArtifactRecord>(item));
    return { ...strip<ReleaseRecord>(head), artifactStates };
  }

  async function endAttempt(ref: ArtifactRef, error: string): Promise<void> {
    const updatedAt = nowIso();
    await conditional('end attempt', () =>
      doc.send(
        new UpdateCommand({
          TableName: tableName,
          Key: artifactKey(ref),
          UpdateExpression: 'SET lastError = :error, updatedAt = :now, #g1sk = :g1sk REMOVE leaseUntil',
          ConditionExpression: '#state IN (:pending, :missing)',
          ExpressionAttributeNames: { '#state': 'state', '#g1sk': k.gsi1SortKey },
          ExpressionAttributeValues: {
            ':error': error.slice(0, 1000),
            ':now': updatedAt,
            ':g1sk': openSk(updatedAt, ref),
            ':pending': 'pending',
            ':missing': 'missing',
          },
        }),
      ),
    );
  }

  return {
    async claimRelease(release, artifacts) {
      const now = nowIso();
      for (const plan of artifacts) {
        const ref = { ...release, artifact: plan.name };
        await conditional('create artifact', () =>
          doc.send(
            new PutCommand({
              TableName: tableName,
              Item: {
                ...artifactKey(ref),
                [k.gsi1PartitionKey]: openArtifacts,
                [k.gsi1SortKey]: openSk(now, ref),
                kind: 'artifact',
                ...ref,
                required: plan.required,
                state: 'pending',
                attempts: 0,
                url: plan.url,
                signatureUrl: plan.signatureUrl,
                updatedAt: now,
              },
              ConditionExpression: 'attribute_not_exists(#pk)',
              ExpressionAttributeNames: { '#pk': k.partitionKey },
            }),
          ),
        );
      }
      return conditional('claim release', () =>
        doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              ...releaseKey(release),
              [k.gsi1PartitionKey]: releaseIndex,
              [k.gsi1SortKey]: `${release.channel}#${release.board}#${versionSortKey(release.version)}`,
              kind: 'release',
              ...release,
              claimedAt: now,
              artifacts: artifacts.map((a) => a.name),
              required: artifacts.filter((a) => a.required).map((a) => a.name),
            },
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
          }),
        ),
      );
    },

    async getArtifact(ref) {
      const item = await getItem(releasePk(ref), artifactSk(ref.artifact));
      return item === undefined ? undefined : strip<ArtifactRecord>(item);
    },

    async beginAttempt(ref, leaseSeconds) {
      const now = clock();
      const updatedAt = now.toISOString();
      const leaseUntil = new Date(now.getTime() + leaseSeconds * 1000).toISOString();
      try {
        const out = await doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'SET leaseUntil = :lease, updatedAt = :now, #g1sk = :g1sk ADD attempts :one',
            ConditionExpression:
              'attribute_exists(#pk) AND #state IN (:pending, :missing) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
            ExpressionAttributeNames: { '#pk': k.partitionKey, '#state': 'state', '#g1sk': k.gsi1SortKey },
            ExpressionAttributeValues: {
              ':lease': leaseUntil,
              ':now': updatedAt,
              ':g1sk': openSk(updatedAt, ref),
              ':one': 1,
              ':pending': 'pending',
              ':missing': 'missing',
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { started: true, record: strip<ArtifactRecord>(out.Attributes ?? {}) };
      } catch (error) {
        if (!isConditionFailure(error)) return wrap('begin attempt', error);
      }
      const current = await getItem(releasePk(ref), artifactSk(ref.artifact));
      if (current === undefined) return { started: false, reason: 'unknown' };
      const state = current.state as ArtifactState;
      if (state === 'verified' || state === 'failed_verification' || state === 'awaiting_trust') {
        return { started: false, reason: state };
      }
      return { started: false, reason: 'busy' };
    },

    endAttempt,

    async markVerified(ref, facts) {
      return conditional('mark verified', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression:
              'SET #state = :verified, updatedAt = :now, #size = :size, sha512 = :sha512, signingKeyFingerprint = :skf, primaryKeyFingerprint = :pkf, signatureCreated = :sc, hashAlgorithm = :ha REMOVE leaseUntil, lastError, alertedAt, alertLeaseUntil, #g1pk, #g1sk',
            ConditionExpression: 'attribute_exists(#pk) AND #state <> :verified',
            ExpressionAttributeNames: {
              '#pk': k.partitionKey,
              '#state': 'state',
              '#size': 'size',
              '#g1pk': k.gsi1PartitionKey,
              '#g1sk': k.gsi1SortKey,
            },
            ExpressionAttributeValues: {
              ':verified': 'verified',
              ':now': nowIso(),
              ':size': facts.size,
              ':sha512': facts.sha512,
              ':skf': facts.signingKeyFingerprint,
              ':pkf': facts.primaryKeyFingerprint,
              ':sc': facts.signatureCreated,
              ':ha': facts.hashAlgorithm,
            },
          }),
        ),
      );
    },

    async markMissing(ref, detail) {
      const updatedAt = nowIso();
      const transitioned = await conditional('mark missing', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression:
              'SET #state = :missing, updatedAt = :now, lastError = :detail, #g1sk = :g1sk REMOVE leaseUntil, alertedAt, alertLeaseUntil',
            ConditionExpression: '#state = :pending',
            ExpressionAttributeNames: { '#state': 'state', '#g1sk': k.gsi1SortKey },
            ExpressionAttributeValues: {
              ':missing': 'missing',
              ':pending': 'pending',
              ':now': updatedAt,
              ':detail': detail.slice(0, 1000),
              ':g1sk': openSk(updatedAt, ref),
            },
          }),
        ),
      );
      if (!transitioned) await endAttempt(ref, detail);
      await conditional('close optional missing', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'REMOVE #g1pk, #g1sk',
            ConditionExpression: '#state = :missing AND required = :no',
            ExpressionAttributeNames: {
              '#state': 'state',
              '#g1pk': k.gsi1PartitionKey,
              '#g1sk': k.gsi1SortKey,
            },
            ExpressionAttributeValues: { ':missing': 'missing', ':no': false },
          }),
        ),
      );
      return transitioned;
    },

    async markFailedVerification(ref, reason) {
      return conditional('mark failed', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression:
              'SET #state = :failed, updatedAt = :now, lastError = :reason REMOVE leaseUntil, alertedAt, alertLeaseUntil, #g1pk, #g1sk',
            ConditionExpression: 'attribute_exists(#pk) AND #state <> :failed',
            ExpressionAttributeNames: {
              '#pk': k.partitionKey,
              '#state': 'state',
              '#g1pk': k.gsi1PartitionKey,
              '#g1sk': k.gsi1SortKey,
            },
            ExpressionAttributeValues: {
              ':failed': 'failed_verification',
              ':now': nowIso(),
              ':reason': reason.slice(0, 1000),
            },
          }),
        ),
      );
    },

    async beginFinalize(release, leaseSeconds) {
      const detail = await getRelease(release);
      if (detail === undefined) return undefined;
      if (detail.finalizedAt !== undefined && detail.announcePending !== true) return undefined;
      const done = detail.artifacts.every((name) => {
        const record = detail.artifactStates.find((a) => a.artifact === name);
        if (record === undefined) return false;
        if (record.state === 'verified') return true;
        return (record.state === 'missing' || record.state === 'failed_verification') && !record.required;
      });
      if (!done) return undefined;
      const now = clock();
      const won = await conditional('begin finalize', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: releaseKey(release),
            UpdateExpression: 'SET finalizeLeaseUntil = :lease',
            ConditionExpression:
              '(attribute_not_exists(finalizedAt) OR attribute_exists(announcePending)) AND (attribute_not_exists(finalizeLeaseUntil) OR finalizeLeaseUntil < :now)',
            ExpressionAttributeValues: {
              ':lease': new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
              ':now': now.toISOString(),
            },
          }),
        ),
      );
      return won ? detail : undefined;
    },

    async completeFinalize(release) {
      return conditional('complete finalize', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: releaseKey(release),
            UpdateExpression: 'SET finalizedAt = :now, announcePending = :yes',
            ConditionExpression: 'attribute_not_exists(finalizedAt)',
            ExpressionAttributeValues: { ':now': nowIso(), ':yes': true },
          }),
        ),
      );
    },

    async recordAnnounced(release) {
      return conditional('record announced', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: releaseKey(release),
            UpdateExpression: 'SET announcedAt = :now REMOVE announcePending, finalizeLeaseUntil',
            ConditionExpression: 'attribute_exists(finalizedAt) AND attribute_not_exists(announcedAt)',
            ExpressionAttributeValues: { ':now': nowIso() },
          }),
        ),
      );
    },

    async recordAlert(ref, state) {
      return conditional('record alert', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'SET alertedAt = :now REMOVE alertLeaseUntil',
            ConditionExpression: '#state = :state AND attribute_not_exists(alertedAt)',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: { ':now': nowIso(), ':state': state },
          }),
        ),
      );
    },

    async claimAlert(ref, state, leaseSeconds) {
      const now = clock();
      return conditional('claim alert', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'SET alertLeaseUntil = :lease',
            ConditionExpression:
              '#state = :state AND attribute_not_exists(alertedAt) AND (attribute_not_exists(alertLeaseUntil) OR alertLeaseUntil < :now)',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':state': state,
              ':now': now.toISOString(),
              ':lease': new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
            },
          }),
        ),
      );
    },

    async releaseAlert(ref) {
      await conditional('release alert', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'REMOVE alertLeaseUntil',
            ConditionExpression: 'attribute_not_exists(alertedAt)',
          }),
        ),
      );
    },

    async abandonFinalize(release) {
      await conditional('abandon finalize', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: releaseKey(release),
            UpdateExpression: 'REMOVE finalizeLeaseUntil',
            ConditionExpression: 'attribute_not_exists(finalizedAt) OR attribute_exists(announcePending)',
          }),
        ),
      );
    },

    async advanceCurrent(release) {
      const versionKey = versionSortKey(release.version);
      return conditional('advance current', () =>
        doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [k.partitionKey]: currentPk(release.channel, release.board),
              [k.sortKey]: 'current',
              kind: 'current',
              channel: release.channel,
              board: release.board,
              version: release.version,
              versionKey,
              updatedAt: nowIso(),
            },
            ConditionExpression: 'attribute_not_exists(#pk) OR versionKey < :vk',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
            ExpressionAttributeValues: { ':vk': versionKey },
          }),
        ),
      );
    },

    async getCurrent(channel, board) {
      const item = await getItem(currentPk(channel, board), 'current');
      return item === undefined ? undefined : strip<MirrorCurrent>(item);
    },

    async acquireCurrentSync(channel, board, holder, leaseSeconds) {
      const now = clock();
      return conditional('acquire current sync', () =>
        doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [k.partitionKey]: currentPk(channel, board),
              [k.sortKey]: currentSyncSk,
              kind: 'current-sync',
              holder,
              leaseUntil: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
            },
            ConditionExpression: 'attribute_not_exists(#pk) OR leaseUntil < :now OR holder = :holder',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
            ExpressionAttributeValues: { ':now': now.toISOString(), ':holder': holder },
          }),
        ),
      );
    },

    async releaseCurrentSync(channel, board, holder) {
      try {
        await doc.send(
          new DeleteCommand({
            TableName: tableName,
            Key: { [k.partitionKey]: currentPk(channel, board), [k.sortKey]: currentSyncSk },
            ConditionExpression: 'holder = :holder',
            ExpressionAttributeValues: { ':holder': holder },
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) wrap('release current sync', error);
      }
    },

    async getPollState(channel, board) {
      const item = await getItem(pollPk(channel, board), 'poll');
      return item === undefined ? undefined : strip<PollState>(item);
    },

    async savePollState(state) {
      try {
        await doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [k.partitionKey]: pollPk(state.channel, state.board),
              [k.sortKey]: 'poll',
              [k.gsi1PartitionKey]: pollIndex,
              [k.gsi1SortKey]: `${state.channel}#${state.board}`,
              kind: 'poll',
              ...state,
            },
          }),
        );
      } catch (error) {
        wrap('save poll state', error);
      }
    },

    async listPollStates() {
      const items = await queryAll({
        IndexName: k.gsi1Name,
        KeyConditionExpression: '#g1pk = :p',
        ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
        ExpressionAttributeValues: { ':p': pollIndex },
      });
      return items.map((item) => strip<PollState>(item));
    },

    async listStalled(before, limit) {
      const items = await queryAll(
        {
          IndexName: k.gsi1Name,
          KeyConditionExpression: '#g1pk = :open AND #g1sk < :before',
          ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey, '#g1sk': k.gsi1SortKey },
          ExpressionAttributeValues: { ':open': openArtifacts, ':before': before.toISOString() },
          Limit: limit,
        },
        'list stalled',
        limit,
      );
      return items
        .map((item) => strip<ArtifactRecord>(item))
        .filter((record) => record.state === 'pending' || (record.state === 'missing' && record.required));
    },

    async touchStalled(ref, seenUpdatedAt) {
      const updatedAt = nowIso();
      return conditional('touch stalled', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: artifactKey(ref),
            UpdateExpression: 'SET updatedAt = :now, #g1sk = :g1sk',
            ConditionExpression:
              'updatedAt = :seen AND (#state = :pending OR (#state = :missing AND required = :yes))',
            ExpressionAttributeNames: { '#state': 'state', '#g1sk': k.gsi1SortKey },
            ExpressionAttributeValues: {
              ':now': updatedAt,
              ':seen': seenUpdatedAt,
              ':g1sk': openSk(updatedAt, ref),
              ':pending': 'pending',
              ':missing': 'missing',
              ':yes': true,
            },
          }),
        ),
      );
    },

    async recordKeyWarning(fingerprint, day) {
      return conditional('record key warning', () =>
        doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [k.partitionKey]: `keywarn#${fingerprint}`,
              [k.sortKey]: day,
              kind: 'key-warning',
              fingerprint,
              day,
              at: nowIso(),
            },
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
          }),
        ),
      );
    },

    async listReleases(channel, board) {
      const prefix =
        channel === undefined ? '' : board === undefined ? `${channel}#` : `${channel}#${board}#`;
      const items = await queryAll({
        IndexName: k.gsi1Name,
        KeyConditionExpression: prefix === '' ? '#g1pk = :r' : '#g1pk = :r AND begins_with(#g1sk, :prefix)',
        ExpressionAttributeNames: {
          '#g1pk': k.gsi1PartitionKey,
          ...(prefix === '' ? {} : { '#g1sk': k.gsi1SortKey }),
        },
        ExpressionAttributeValues: { ':r': releaseIndex, ...(prefix === '' ? {} : { ':prefix': prefix }) },
      });
      return items.map((item) => strip<ReleaseRecord>(item));
    },

    async listUnannounced(since, before, limit) {
      const items = await queryAll(
        {
          IndexName: k.gsi1Name,
          KeyConditionExpression: '#g1pk = :r',
          FilterExpression:
            'attribute_not_exists(announcedAt) AND claimedAt >= :since AND claimedAt < :before',
          ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
          ExpressionAttributeValues: {
            ':r': releaseIndex,
            ':since': since.toISOString(),
            ':before': before.toISOString(),
          },
        },
        'list unannounced',
        limit,
      );
      return items.map((item) => {
        const { channel, board, version } = strip<ReleaseRecord>(item);
        return { channel, board, version };
      });
    },

    getRelease,
    ...trustWaitOperations(doc, tableName, clock),
  };
}
