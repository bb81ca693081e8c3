import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The single-table layout of the ledger: every key name, index name and item key format lives here, so the
 * CDK stack, the local runner, the mirror's ledger, the instance repository and the tests cannot disagree.
 * `pk`/`sk` are strings; `gsi1` is sparse and holds one listing per partition value (`ledgerIndex`).
 */
export const ledgerKeySchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1Name: 'gsi1',
  gsi1PartitionKey: 'gsi1pk',
  gsi1SortKey: 'gsi1sk',
} as const;

/** Items with this attribute (epoch seconds) expire: DynamoDB's TTL on AWS, a sweep on one machine. */
export const ledgerTtlAttribute = 'ttl';

/**
 * What a mirror item is (`release`, `artifact`, `poll`, ...). Instance records use the same attribute for
 * their config kind, so it is never read to tell items apart: the keys do that.
 */
export const ledgerKindAttribute = 'kind';

/**
 * The attributes that hold each lease's expiry (an ISO time). `lease.ts` takes and gives back every one of
 * them the same way; a verdict on an artifact drops its attempt and alert leases.
 */
export const ledgerLeases = {
  /** A worker's attempt at an artifact. */
  attempt: { attribute: 'leaseUntil' },
  /** A worker's finalize of a release, held until its announcement went out. */
  finalize: { attribute: 'finalizeLeaseUntil' },
  /** A worker's publish of an artifact's alert. */
  alert: { attribute: 'alertLeaseUntil' },
  /** A finalize's write of the store's `current/` files, on its own item per channel and board. */
  currentSync: { attribute: 'leaseUntil' },
  /** Retention's deletion of a release, taken with the pruning mark and again by whoever finishes it. */
  prune: { attribute: 'pruneLeaseUntil' },
} as const;

/** The attribute that names the holder of a lease taken by name (the `current/` write lease). */
export const ledgerLeaseHolderAttribute = 'holder';

/** A ledger item's primary key, under the table's own attribute names. */
export type LedgerKey = Record<string, string>;

export function ledgerKey(pk: string, sk: string): LedgerKey {
  return { [ledgerKeySchema.partitionKey]: pk, [ledgerKeySchema.sortKey]: sk };
}

/** An item's entry in `gsi1`, under the table's own attribute names. */
export function ledgerIndexEntry(partition: string, sort: string): LedgerKey {
  return { [ledgerKeySchema.gsi1PartitionKey]: partition, [ledgerKeySchema.gsi1SortKey]: sort };
}

/** The query input that lists one whole `gsi1` partition (a `ledgerIndex` value). */
export function ledgerIndexListing(partition: string) {
  return {
    IndexName: ledgerKeySchema.gsi1Name,
    KeyConditionExpression: '#g1pk = :p',
    ExpressionAttributeNames: { '#g1pk': ledgerKeySchema.gsi1PartitionKey },
    ExpressionAttributeValues: { ':p': partition },
  };
}

/**
 * The `gsi1` partitions. An item is listed by being given the partition's value, and leaves the listing
 * when its index attributes are removed.
 */
export const ledgerIndex = {
  /** Every claimed release, sorted by `{source}#{channel}#{board}#{sortable version}`. */
  releases: 'release',
  /**
   * Releases being pruned, same sort key: a release moves here from `releases` when its prune starts, so
   * no listing shows it while its files go, and the next run finds it to finish.
   */
  pruningReleases: 'release-pruning',
  /** Every poll state, sorted by `{source}#{channel}#{board}`. */
  pollStates: 'poll',
  /** Artifacts still to do (pending, or missing and required), sorted by `{updatedAt}#...`. */
  openArtifacts: 'open-artifact',
  /** Artifacts refused for an unknown signer, read when the trust changes. */
  awaitingTrust: 'awaiting-trust',
  /** Every instance record, sorted by id. */
  instances: 'instance-list',
  /**
   * Instance fetch audit items of one UTC day (`YYYY-MM-DD`), as written before audit items left the
   * index (the day markers, `ledgerItems.auditDayMarker`, list them now); still read by the expiry sweep
   * so those older items expire on one machine too.
   */
  instanceAuditDay: (day: string) => `instance-audit#${day}`,
  /** Every boot profile, sorted by name. */
  bootProfiles: 'boot-profile',
  /** Every fleet machine's check and event items, sorted by `{machineId}#check` / `{machineId}#event`. */
  fleet: 'fleet',
  /** Update payloads planned and not yet verified, refused or missing, sorted by `{updatedAt}#...`. */
  openUpdatePayloads: 'open-update-payload',
  /** Every update group, sorted by name. */
  updateGroups: 'update-group',
} as const;

interface StreamKeyParts {
  source: string;
  channel: string;
  board: string;
}

interface ReleaseKeyParts extends StreamKeyParts {
  version: string;
}

const artifactSortPrefix = 'artifact#';
const instancePartitionPrefix = 'instance#';
const auditSortPrefix = 'audit#';
const fleetPartitionPrefix = 'fleet#';
const auditDayPartitionPrefix = 'audit-day#';
const updatePayloadSortPrefix = 'payload#';
/** The sort key prefix of an update group's period items (`period#<ISO start>`, so they sort by time). */
export const updatePeriodSortPrefix = 'period#';

/** Key formats of every item kind in the table. */
export const ledgerItems = {
  /** The release claim and its finalize state; its artifacts share the partition. */
  release: (r: ReleaseKeyParts) => ledgerKey(releasePartition(r), '#release'),
  artifact: (r: ReleaseKeyParts & { artifact: string }) =>
    ledgerKey(releasePartition(r), `${artifactSortPrefix}${r.artifact}`),
  /** Tells artifact items from the release item in a query of the release partition. */
  isArtifactSortKey: (sk: unknown) => typeof sk === 'string' && sk.startsWith(artifactSortPrefix),
  pollState: (s: StreamKeyParts) => ledgerKey(`poll#${streamKey(s)}`, 'poll'),
  /** The mirror's current version of a source's channel and board. */
  current: (s: StreamKeyParts) => ledgerKey(`current#${streamKey(s)}`, 'current'),
  /** The lease that serialises writes of the store's `current/` files of a source's channel and board. */
  currentSync: (s: StreamKeyParts) => ledgerKey(`current#${streamKey(s)}`, 'sync-lease'),
  keyWarning: (fingerprint: string, day: string) => ledgerKey(`keywarn#${fingerprint}`, day),
  trustAlert: (issuer: string, trustVersion: string) => ledgerKey(`trustalert#${issuer}`, trustVersion),
  /** One item per source address, naming the instance that holds it. */
  address: (address: string) => ledgerKey(`address#${address}`, 'owner'),
  instance: (id: string) => ledgerKey(instancePartition(id), 'meta'),
  instanceAudit: (id: string, suffix: string) =>
    ledgerKey(instancePartition(id), `${auditSortPrefix}${suffix}`),
  /**
   * The keys of the audit items one write round put, in a partition per UTC day of their first entry
   * (`YYYY-MM-DD`), so the single-machine expiry sweep finds a day's audit items without an index entry
   * on each of them.
   */
  auditDayMarker: (day: string, suffix: string) => ledgerKey(`${auditDayPartitionPrefix}${day}`, suffix),
  /** A bare-metal boot profile (release, kernel arguments, RAM or disk). */
  bootProfile: (name: string) => ledgerKey(`bootprofile#${name}`, 'profile'),
  /**
   * An instance's boot selectors, profile and boot tokens, in the instance's own partition, so deleting
   * the instance removes them with it.
   */
  bootSelection: (id: string) => ledgerKey(instancePartition(id), 'boot'),
  /** Every instance whose boot selectors have exactly these hardware values (`mac=…&uuid=…`). */
  bootSelectorGroup: (hardwareKey: string) => ledgerKey(`bootsel#${hardwareKey}`, 'members'),
  /** A machine's last update check (what it runs, what it was answered). */
  fleetCheck: (machineId: string) => ledgerKey(`${fleetPartitionPrefix}${machineId}`, 'check'),
  /** A machine's last Omaha event report, its own item so a check-in without events never erases it. */
  fleetEvent: (machineId: string) => ledgerKey(`${fleetPartitionPrefix}${machineId}`, 'event'),
  /** One periodic count of the fleet per version and status, sorted by time. */
  fleetSnapshot: (at: string) => ledgerKey('fleet-snapshot', at),
  /** A fleet notification (`update.rolled_out`, `update.failed_rate`) that goes out once per subject. */
  fleetNotice: (event: string, subject: string) => ledgerKey(`fleet-notice#${event}`, subject),
  /** An update group, keyed by the `track` its instances send. */
  updateGroup: (name: string) => ledgerKey(`updgroup#${name}`, 'group'),
  /** The machines an update group's per-period cap admitted in the period starting at `start`. */
  updatePeriod: (name: string, start: string) =>
    ledgerKey(`updgroup#${name}`, `${updatePeriodSortPrefix}${start}`),
  /** One update payload of a release; a board and version's payloads share the partition. */
  updatePayload: (board: string, version: string, name: string) =>
    ledgerKey(updatePayloadPartition(board, version), `${updatePayloadSortPrefix}${name}`),
} as const;

/** The fleet-side key parts that queries need on their own. */
export const fleetKeyParts = {
  snapshotPartition: 'fleet-snapshot',
  /** `gsi1` sort key of a machine's item of `kind` (`check` or `event`). */
  indexSort: (machineId: string, kind: 'check' | 'event') => `${machineId}#${kind}`,
} as const;

/** The update payload key parts that queries need on their own. */
export const updatePayloadKeyParts = {
  partition: updatePayloadPartition,
  sortPrefix: updatePayloadSortPrefix,
} as const;

/** The instance-side key parts that queries and scans need on their own. */
export const instanceKeyParts = {
  partition: instancePartition,
  /** The partition prefix of every instance item; what follows it is the instance id. */
  partitionPrefix: instancePartitionPrefix,
  recordSortKey: 'meta',
  auditSortPrefix,
  /** The partition of one UTC day's audit markers. */
  auditDayPartition: (day: string) => `${auditDayPartitionPrefix}${day}`,
} as const;

/**
 * `{source}#{channel}#{board}`: the source comes first, so Flatcar's and CoreOS's `stable` never share an
 * item. Names are plain (no `#`), so the parts cannot run into each other.
 */
export function streamKey(s: StreamKeyParts): string {
  return `${s.source}#${s.channel}#${s.board}`;
}

function releasePartition(r: ReleaseKeyParts): string {
  return `rel#${streamKey(r)}#${r.version}`;
}

/** By board and version alone: the update origin's layout has no channel, and neither do its payloads. */
function updatePayloadPartition(board: string, version: string): string {
  return `upd#${board}#${version}`;
}

function instancePartition(id: string): string {
  return `${instancePartitionPrefix}${id}`;
}

/**
 * The single-machine table of the instance audit (audit items and day markers): the ledger table's keys
 * and no index, since neither kind is listed through one. Without an index, a write never has to read
 * the item it replaces to find its index entries.
 */
export function auditTableInput(tableName: string) {
  const k = ledgerKeySchema;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: k.partitionKey, AttributeType: 'S' },
      { AttributeName: k.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: k.partitionKey, KeyType: 'HASH' },
      { AttributeName: k.sortKey, KeyType: 'RANGE' },
    ],
  } satisfies CreateTableCommandInput;
}

/** The ledger table: the audit table's keys, and `gsi1` (see `ledgerIndex`). */
export function ledgerTableInput(tableName: string): CreateTableCommandInput {
  const k = ledgerKeySchema;
  const keys = auditTableInput(tableName);
  return {
    ...keys,
    AttributeDefinitions: [
      ...keys.AttributeDefinitions,
      { AttributeName: k.gsi1PartitionKey, AttributeType: 'S' },
      { AttributeName: k.gsi1SortKey, AttributeType: 'S' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: k.gsi1Name,
        KeySchema: [
          { AttributeName: k.gsi1PartitionKey, KeyType: 'HASH' },
          { AttributeName: k.gsi1SortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}
