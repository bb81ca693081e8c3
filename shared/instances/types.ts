import type { InstanceParams } from '../metadata/params.ts';

/** What an instance fetches: an Ignition config, or a legacy cloud-config for old images. */
export type ConfigKind = 'ignition' | 'cloud-config';

/** How a fetch reached the service: the token URL, or a metadata protocol (directly or via the proxy). */
export type RouteFamily = 'token' | 'openstack' | 'ec2' | 'proxy';

/** Instance ids appear in URLs and store keys, so nothing outside this pattern gets in. */
export const instanceIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface InstanceRecord {
  id: string;
  kind: ConfigKind;
  /** SHA-256 hex of the instance token; the token itself is never stored. */
  tokenHash: string;
  /** Quoted strong ETag of the body. */
  etag: string;
  /** Key of the body in the config store; content-addressed, so a body under a key never changes. */
  bodyKey: string;
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
}

export type FetchOutcome =
  | 'served'
  | 'no-token'
  | 'unknown-instance'
  | 'wrong-token'
  | 'wrong-kind'
  | 'expired'
  | 'consumed'
  | 'unavailable';

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
  /** Create or replace the record (a new PUT rotates the token and resets consumption). */
  put(record: InstanceRecord): Promise<void>;
  /** Remove the record and its audit trail. */
  delete(id: string): Promise<void>;
  /**
   * Mark a one-time config consumed. True for exactly one caller: the write is conditional on the config
   * not being consumed yet and on the token hash still being the one that was checked.
   */
  consume(id: string, tokenHash: string, at: Date): Promise<boolean>;
  /** Queue an audit entry; it is written within about a flush interval, or on `flush()`. */
  recordFetch(id: string, entry: AuditEntry): void;
  /** Newest first. */
  listAudit(id: string, limit: number): Promise<AuditEntry[]>;
  /**
   * Claim source addresses for `id`, each with a conditional write, so two racing claims of one address
   * cannot both win. On a conflict nothing this call claimed is kept, and the holder is named.
   */
  claimAddresses(id: string, addresses: readonly string[]): Promise<AddressConflict | undefined>;
  /** Give up addresses `id` holds; an address since claimed by another instance is left alone. */
  releaseAddresses(id: string, addresses: readonly string[]): Promise<void>;
  /** The instance holding a source address: one ledger read (or none, where records are cached). */
  instanceAtAddress(address: string): Promise<string | undefined>;
  /** Instance records in id order, at most `limit`, after the id `after`. */
  list(limit: number, after?: string): Promise<InstancePage>;
  /** Write every queued audit entry now. */
  flush(): Promise<void>;
  /** Flush and stop the background timer. */
  close(): Promise<void>;
}
