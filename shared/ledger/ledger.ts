import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ledgerTable } from './access.ts';
import { type AlertLedger, alertLedger } from './alerts.ts';
import { type ArtifactLedger, artifactLedger } from './artifacts.ts';
import { type CurrentLedger, currentLedger } from './current.ts';
import { type PollLedger, pollLedger } from './poll.ts';
import { type PruneLedger, pruneLedger } from './pruning.ts';
import { type ReleaseLedger, releaseLedger } from './releases.ts';
import { type TrustWaitLedger, trustWaitLedger } from './trust-wait.ts';
import { type UpdateGroupLedger, updateGroupLedger } from './update-groups.ts';
import { type UpdatePayloadLedger, updatePayloadLedger } from './update-payloads.ts';

export type { AlertLedger } from './alerts.ts';
export type { ArtifactLedger } from './artifacts.ts';
export type { CurrentLedger } from './current.ts';
export type { PollLedger } from './poll.ts';
export type { PruneLedger } from './pruning.ts';
export type * from './records.ts';
export type { ReleaseLedger } from './releases.ts';
export type { TrustWaitLedger } from './trust-wait.ts';
export type { UpdateGroupLedger } from './update-groups.ts';
export type { UpdatePayloadItem, UpdatePayloadLedger, UpdatePayloadRef } from './update-payloads.ts';

/**
 * The mirror's memory: every part of it on one table. Every transition that must happen once (claim,
 * verified, missing, failed, finalize, current moving forward, a daily key warning) is a conditional write,
 * so concurrent pollers and workers and redelivered messages cannot double any effect. Methods that make a
 * transition return whether this caller made it; only that caller publishes the matching event.
 *
 * A core that needs one part can ask for that part's interface alone. The instance records on the same
 * table are `InstanceRepository` (`shared/instances/repository.ts`).
 */
export type Ledger = ReleaseLedger &
  ArtifactLedger &
  CurrentLedger &
  PollLedger &
  AlertLedger &
  TrustWaitLedger &
  PruneLedger &
  UpdatePayloadLedger &
  UpdateGroupLedger;

export interface DynamoLedgerOptions {
  clock?: () => Date;
}

/** The ledger on DynamoDB (or dynalite), single table, keys from `shared/ledger/table.ts`. */
export function createDynamoLedger(
  doc: DynamoDBDocumentClient,
  tableName: string,
  options: DynamoLedgerOptions = {},
): Ledger {
  const table = ledgerTable(doc, tableName, options.clock ?? (() => new Date()));
  return {
    ...releaseLedger(table),
    ...artifactLedger(table),
    ...currentLedger(table),
    ...pollLedger(table),
    ...alertLedger(table),
    ...trustWaitLedger(table),
    ...pruneLedger(table),
    ...updatePayloadLedger(table),
    ...updateGroupLedger(table),
  };
}
