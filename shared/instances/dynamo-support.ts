/** DynamoDB plumbing of the instance repository: error mapping and the audit item format. */
import { inflateRawSync } from 'node:zlib';
import { TransientError } from '../errors.ts';
import type { AuditEntry, FetchOutcome, RouteFamily } from './types.ts';

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

export function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

const routeFamilies = new Set<string>(['token', 'openstack', 'ec2', 'proxy']);

export function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
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
  | { DeleteRequest: { Key: Record<string, string> } };

/**
 * An audit item's entries: `entriesZ` (raw deflate of the JSON array) since entries were compressed, or
 * the older plain `entries` string. An item that cannot be read yields none rather than failing the list.
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
