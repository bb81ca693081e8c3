import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.ts';
import type { ArtifactRef, ReleaseRef } from './ledger.ts';
import { ledgerKeySchema } from './table.ts';

/** How the ledger's records map onto the single table's keys, shared by the ledger's modules. */
export const k = ledgerKeySchema;
export const releaseSk = '#release';
export const artifactSkPrefix = 'artifact#';
export const openArtifacts = 'open-artifact';
export const releaseIndex = 'release';
export const pollIndex = 'poll';

export const releasePk = (r: ReleaseRef) => `rel#${r.channel}#${r.board}#${r.version}`;
export const artifactSk = (name: string) => `${artifactSkPrefix}${name}`;
export const pollPk = (channel: string, board: string) => `poll#${channel}#${board}`;
export const currentPk = (channel: string, board: string) => `current#${channel}#${board}`;
export const currentSyncSk = 'sync-lease';
export const openSk = (updatedAt: string, ref: ArtifactRef) =>
  `${updatedAt}#${ref.channel}#${ref.board}#${ref.version}#${ref.artifact}`;

export const internalAttributes = new Set([
  k.partitionKey,
  k.sortKey,
  k.gsi1PartitionKey,
  k.gsi1SortKey,
  'kind',
]);

export function strip<T>(item: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item)) {
    if (!internalAttributes.has(key) && key !== 'versionKey') out[key] = value;
  }
  return out as T;
}

export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

/** A throttled or unreachable table is worth a retry; the handler maps this to a redelivery. */
export function wrap(operation: string, error: unknown): never {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  throw new TransientError('ledger-unavailable', `ledger ${operation} failed: ${detail}`, { cause: error });
}

/** True if the write happened, false if its condition failed; anything else is a transient failure. */
export async function conditionalWrite(operation: string, run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    return wrap(operation, error);
  }
}
