/** DynamoDB plumbing of the instance repository: error mapping and the audit item format. */
import { inflateRawSync } from 'node:zlib';
import { TransientError } from '../errors.ts';
import type { LedgerKey } from '../ledger/table.ts';
import { parseStoredParams } from '../metadata/params.ts';
import type { AuditEntry, ConfigKind, FetchOutcome, InstanceRecord, RouteFamily } from './types.ts';

const retryableNames = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
]);

/** Network failures carry no HTTP status at all; those and 5xx/throttling are worth retrying. */
function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return retryableNames.has(error.name) || status === undefined || status >= 500;
}

export async function ledgerCall<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isRetryable(error)) {
      throw new TransientError('ledger-unavailable', `instance ledger unavailable (${action})`, {
        cause: error,
      });
    }
    throw error;
  }
}

export { isConditionFailure } from '../ledger/access.ts';

const routeFamilies = new Set<string>(['token', 'openstack', 'ec2', 'proxy', 'boot']);

export function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The binary attribute of a record item holding its raw-deflated inline body. */
export const inlineBodyAttribute = 'bodyZ';

/** An instance record item as the record; `id` comes from its key, which the caller has. */
export function toRecord(id: string, item: Record<string, unknown>): InstanceRecord {
  const kind: ConfigKind = item.kind === 'cloud-config' ? 'cloud-config' : 'ignition';
  const specVersion = optionalString(item.specVersion);
  const consumedAt = optionalString(item.consumedAt);
  const expiresAt = optionalString(item.expiresAt);
  const params = item.params === undefined ? undefined : parseStoredParams(item.params);
  const reservedUntil = optionalString(item.reservedUntil);
  const writeId = optionalString(item.writeId);
  const inlineBody = item[inlineBodyAttribute];
  return {
    id,
    kind,
    tokenHash: String(item.tokenHash),
    // A reserved record has no body yet.
    etag: optionalString(item.etag) ?? '',
    bodyKey: optionalString(item.bodyKey) ?? '',
    // A copy of its own: the decoded attribute may be a view of a shared buffer that a cached record would pin.
    ...(inlineBody instanceof Uint8Array ? { inlineBody: new Uint8Array(inlineBody) } : {}),
    ...(writeId === undefined ? {} : { writeId }),
    size: typeof item.size === 'number' ? item.size : 0,
    oneTime: item.oneTime === true,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    ...(specVersion === undefined ? {} : { specVersion }),
    ...(consumedAt === undefined ? {} : { consumedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(params === undefined ? {} : { params }),
    ...(reservedUntil === undefined ? {} : { reservedUntil }),
  };
}

export function toAudit(item: unknown): AuditEntry {
  const entry = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
  const route = entry.route === 'cloud-config' || entry.route === 'metadata' ? entry.route : 'ignition';
  const family = routeFamilies.has(String(entry.family)) ? (entry.family as RouteFamily) : undefined;
  const path = optionalString(entry.path);
  return {
    at: String(entry.at),
    route,
    ...(family === undefined ? {} : { family }),
    ...(path === undefined ? {} : { path }),
    sourceIp: String(entry.sourceIp),
    userAgent: String(entry.userAgent),
    outcome: String(entry.outcome) as FetchOutcome,
  };
}

export type WriteRequest =
  | { PutRequest: { Item: Record<string, unknown> } }
  | { DeleteRequest: { Key: LedgerKey } };

/**
 * An audit item's entries: `entriesZ` (raw deflate of the JSON array), or the plain `entries` string
 * (short ones, and every item from before entries were compressed). An item that cannot be read yields none rather than failing the list.
 */
export function auditEntriesOf(item: Record<string, unknown>): unknown {
  try {
    if (item.entriesZ instanceof Uint8Array)
      return JSON.parse(inflateRawSync(item.entriesZ).toString('utf8'));
    if (typeof item.entries === 'string') return JSON.parse(item.entries);
  } catch {
    return [];
  }
  return [];
}
