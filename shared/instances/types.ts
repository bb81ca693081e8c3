/** What an instance fetches: an Ignition config, or a legacy cloud-config for old images. */
export type ConfigKind = 'ignition' | 'cloud-config';

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
  route: ConfigKind;
  sourceIp: string;
  userAgent: string;
  outcome: FetchOutcome;
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
  /** Write every queued audit entry now. */
  flush(): Promise<void>;
  /** Flush and stop the background timer. */
  close(): Promise<void>;
}
