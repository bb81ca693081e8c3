import type { InstanceParams } from '../metadata/params.ts';

/** What an instance fetches: an Ignition config, or a legacy cloud-config for old images. */
export type ConfigKind = 'ignition' | 'cloud-config';

/**
 * How a fetch reached the service: the token URL, a metadata protocol (directly or via the proxy), or a
 * boot token a network boot script named.
 */
export type RouteFamily = 'token' | 'openstack' | 'ec2' | 'proxy' | 'boot';

/** Instance ids appear in URLs and store keys, so nothing outside this pattern gets in. */
export const instanceIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface InstanceRecord {
  id: string;
  kind: ConfigKind;
  /** SHA-256 hex of the instance token; the token itself is never stored. */
  tokenHash: string;
  /** Quoted strong ETag of the body. */
  etag: string;
  /**
   * Key of the body in the config store. Every write gets a key of its own (a random part beside the
   * SHA-256), so a key is never written twice: a body under a key never changes, and a body no record
   * points at can never be pointed at again, which is what makes collecting it safe.
   */
  bodyKey: string;
  /**
   * The body itself, raw-deflated (`inline-body.ts`), when it was small enough to live in the record
   * (`instances.inlineBodyMaxBytes`); `bodyKey` is then empty and a fetch reads no store object. Records
   * written before inline bodies existed, and larger bodies, have only `bodyKey`.
   */
  inlineBody?: Uint8Array;
  /**
   * Random per write, so a retried write that already landed is known as itself (an inline body has no
   * unique key to tell it by). Absent on records written before it existed and on reservations.
   */
  writeId?: string;
  /** Bytes of the body as served (before compression). */
  size: number;
  /** Ignition spec version, for Ignition configs. */
  specVersion?: string;
  oneTime: boolean;
  consumedAt?: string;
  expiresAt?: string;
  createdAt: string;
  updatedAt: string;
  /** Addresses, hostname, keys and attributes the metadata routes serve; absent on older records. */
  params?: InstanceParams;
  /**
   * Present while the instance is reserved and has no config yet: its fetches answer 503 until this time,
   * then 404. `kind`, `etag`, `bodyKey` and `size` are placeholders (`ignition`, empty, empty, 0) until
   * the first PUT, which keeps the token the reservation issued.
   */
  reservedUntil?: string;
}

/**
 * `ready`: it has a config. `pending`: reserved, no config yet, deadline ahead (answer 503, the client
 * retries). `lapsed`: reserved and the deadline passed with no config (answer 404, as for no instance).
 */
export type ReservationState = 'ready' | 'pending' | 'lapsed';

export function reservationState(record: InstanceRecord, now: Date): ReservationState {
  if (record.reservedUntil === undefined) return 'ready';
  return Date.parse(record.reservedUntil) > now.getTime() ? 'pending' : 'lapsed';
}

export type FetchOutcome =
  | 'served'
  | 'no-token'
  | 'unknown-instance'
  | 'wrong-token'
  | 'wrong-kind'
  | 'expired'
  | 'consumed'
  | 'unavailable'
  /** Reserved, no config yet: answered 503 so the client retries. */
  | 'pending'
  /** Reserved, and the reservation's deadline passed with no config put: answered 404. */
  | 'reservation-lapsed';

export interface AuditEntry {
  at: string;
  /** What was asked for: a config, or (metadata routes) anything else about the instance. */
  route: ConfigKind | 'metadata';
  /** Absent on entries written before the metadata routes existed: those are all `token`. */
  family?: RouteFamily;
  /** The metadata path asked for, for metadata routes. */
  path?: string;
  sourceIp: string;
  userAgent: string;
  outcome: FetchOutcome;
}

/** One page of instance records, in id order; `next` continues after the last one. */
export interface InstancePage {
  records: InstanceRecord[];
  next?: string;
}

/** A PUT that would take an address another instance holds. */
export interface AddressConflict {
  address: string;
  holder: string;
}

/**
 * Where instance records and their fetch audit live. Errors that a retry may cure (network, throttling,
 * 5xx) are thrown as TransientError, so callers can answer 503 and Ignition retries.
 */
export interface InstanceRepository {
  get(id: string): Promise<InstanceRecord | undefined>;
  /**
   * Create or replace the record (a new PUT rotates the token and resets consumption), only if the stored
   * record is still `replaces` (undefined: there is none), compared by token hash, which every write
   * changes. Otherwise throws InstanceConflictError. Repeating a write that already landed succeeds, so a
   * retried request whose first answer was lost does not report a conflict with itself. The first config
   * put on a reservation keeps its token hash, so that write is conditional on the record still being
   * reserved instead (of racing configs for one reservation, one wins).
   */
  put(record: InstanceRecord, replaces: InstanceRecord | undefined): Promise<void>;
  /** Remove the record, if it is still `replaces` (else InstanceConflictError), and its audit trail. */
  delete(id: string, replaces: InstanceRecord): Promise<void>;
  /**
   * Mark a one-time config consumed. True for exactly one caller: the write is conditional on the config
   * not being consumed yet and on the token hash still being the one that was checked.
   */
  consume(id: string, tokenHash: string, at: Date): Promise<boolean>;
  /** Queue an audit entry; it is written within about a flush interval, or on `flush()`. */
  recordFetch(id: string, entry: AuditEntry): void;
  /** Newest first. */
  listAudit(id: string, limit: number): Promise<AuditEntry[]>;
  /** Every instance id with a record, in pages; for loading an id index at start and for sweeps. */
  listIds(): AsyncIterable<string[]>;
  /**
   * Remove audit entries written before `cutoff` (by day: a day's entries go together once the whole day
   * is older). DynamoDB does this itself through the table's TTL; dynalite has no TTL, so a local sweep
   * calls this. `daysBack` bounds how far before the cutoff it looks. Answers how many items it removed.
   */
  deleteAuditBefore(cutoff: Date, daysBack: number): Promise<number>;
  /**
   * Claim source addresses for `id`, each with a conditional write, so two racing claims of one address
   * cannot both win. On a conflict nothing this call claimed is kept, and the holder is named.
   */
  claimAddresses(id: string, addresses: readonly string[]): Promise<AddressConflict | undefined>;
  /** Give up addresses `id` holds; an address since claimed by another instance is left alone. */
  releaseAddresses(id: string, addresses: readonly string[]): Promise<void>;
  /** The instance holding a source address: one ledger read (or none, where records are cached). */
  instanceAtAddress(address: string): Promise<string | undefined>;
  /** Instance records in id order, at most `limit`, after the id `after`, only ids starting `prefix`. */
  list(limit: number, after?: string, prefix?: string): Promise<InstancePage>;
  /** Write every queued audit entry now. */
  flush(): Promise<void>;
  /** Flush and stop the background timer. */
  close(): Promise<void>;
}
