/**
 * The instance config service: what the API's admin and fetch routes call. Each operation lives in its
 * own module (`put-config.ts`, `fetch-config.ts`, `put-body.ts` for what a PUT may carry, `errors.ts`);
 * this module holds the read and delete operations and is the one import the hosts and routes need.
 */

import type { InstanceServiceDeps } from './deps.ts';
import { assertInstanceId, InstanceNotFoundError } from './errors.ts';
import { type AuditEntry, type ConfigKind, type ReservationState, reservationState } from './types.ts';

export { type BodyCache, createBodyCache } from './body-cache.ts';
export type { InstanceServiceDeps, RefusedFetchCounter } from './deps.ts';
export {
  AddressInUseError,
  assertInstanceId,
  InstanceNotFoundError,
  InvalidInstanceConfigError,
  renderZodPath,
} from './errors.ts';
export {
  type FetchConfigInput,
  type FetchConfigResult,
  fetchInstanceConfig,
  readBody,
} from './fetch-config.ts';
export {
  contentTypes,
  expectedBodyForms,
  maxCloudConfigBytes,
  maxInstanceBodyBytes,
  unwrapRawIgnition,
} from './put-body.ts';
export { claimNewAddresses, maxPutMs, type PutInstanceResult, putInstanceConfig } from './put-config.ts';

/** A reserved instance has no config yet, so no kind, ETag or size. */
export interface InstanceDescription {
  id: string;
  state: ReservationState;
  kind?: ConfigKind;
  specVersion?: string;
  etag?: string;
  size?: number;
  oneTime: boolean;
  consumedAt?: string;
  expiresAt?: string;
  createdAt: string;
  updatedAt: string;
  reservedUntil?: string;
  audit: AuditEntry[];
}

/** Metadata and the newest fetches; never the token or its hash. */
export async function describeInstance(
  id: string,
  deps: InstanceServiceDeps,
  auditLimit = 100,
): Promise<InstanceDescription> {
  assertInstanceId(id);
  const record = await deps.instances.get(id);
  if (record === undefined) throw new InstanceNotFoundError(id);
  await deps.instances.flush();
  const audit = await deps.instances.listAudit(id, auditLimit);
  const {
    tokenHash: _hidden,
    bodyKey: _internal,
    inlineBody: _body,
    writeId: _write,
    kind,
    etag,
    size,
    ...visible
  } = record;
  const state = reservationState(record, deps.clock());
  return { ...visible, state, ...(state === 'ready' ? { kind, etag, size } : {}), audit };
}

/**
 * The record goes first, conditional on being the one read (InstanceConflictError otherwise), so the
 * instance stops being served even if removing the body fails; an inline body goes with it. A body in the
 * store can then go at once: body keys are never reused, so no other record can point at it. A failure
 * there leaves it to the sweep.
 */
export async function deleteInstance(id: string, deps: InstanceServiceDeps): Promise<void> {
  assertInstanceId(id);
  const record = await deps.instances.get(id);
  if (record === undefined) throw new InstanceNotFoundError(id);
  await deps.instances.delete(id, record);
  await deps.instances.releaseAddresses(id, record.params?.ips ?? []);
  if (record.bodyKey !== '') await deps.bodies.delete(record.bodyKey).catch(() => undefined);
}
