import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { CldistConfig } from '../config.ts';
import { TransientError } from '../errors.ts';
import { hasParams, type InstanceParams, paramsFromBody } from '../metadata/params.ts';
import type { InstanceServiceDeps } from './deps.ts';
import { AddressInUseError, assertInstanceId, InstanceConflictError } from './errors.ts';
import type { ValidationIssue } from './ignition.ts';
import { packInlineBody, storesInline } from './inline-body.ts';
import { contentTypes, type PreparedBody, parsePutBody, prepareBody } from './put-body.ts';
import { hashInstanceToken, newInstanceToken } from './tokens.ts';
import type { InstanceRecord } from './types.ts';

/**
 * A PUT whose record write comes later than this after its body write gives up (503) instead: the body
 * sweep may collect a body no record has pointed at for `bodySweepGraceMs`, and this margin keeps a slow
 * PUT from ever pointing a record at a collected body.
 */
export const maxPutMs = 60_000;

export interface PutInstanceResult {
  created: boolean;
  /** Shown once; only its hash is kept. Absent when the PUT kept a reservation's token. */
  token?: string;
  record: InstanceRecord;
  warnings: ValidationIssue[];
}

/**
 * Validate and store an instance config, issuing a fresh token. A body up to
 * `instances.inlineBodyMaxBytes` goes into the record itself, compressed; a larger one is written to the
 * config store under a key of its own before the record that points at it, so a fetch never sees a record
 * whose body is missing. The
 * record write is conditional on the record read before (InstanceConflictError, 409, if another write got
 * there first), and nothing is deleted here: a replaced or losing body is left for `sweepConfigBodies`,
 * because deleting it in this racing path is what could strand the winner's record.
 */
export async function putInstanceConfig(
  input: { id: string; body: unknown; text?: string; strict?: boolean; newToken?: boolean },
  deps: InstanceServiceDeps,
  config: CldistConfig,
): Promise<PutInstanceResult> {
  assertInstanceId(input.id);
  const now = deps.clock();
  const { data, expiresAt } = parsePutBody(input.body, input.text, now);
  const prepared = prepareBody(data, config, input.strict ?? false);
  const digest = createHash('sha256').update(prepared.body).digest('hex');
  const writeId = randomBytes(8).toString('hex');
  const inline = storesInline(prepared.body.byteLength, config.instances.inlineBodyMaxBytes);
  const bodyKey = inline
    ? ''
    : `instances/${input.id}/${digest}.${writeId}.${prepared.kind === 'ignition' ? 'ign' : 'yaml'}`;
  const previous = await deps.instances.get(input.id);
  const bodyWrittenAt = performance.now();
  if (!inline) await deps.bodies.put(bodyKey, prepared.body, { contentType: contentTypes[prepared.kind] });
  const given = paramsFromBody(data);
  // A reservation's addresses and names carry over to its first config unless that gives its own.
  const params =
    previous?.reservedUntil !== undefined && !hasParams(given) && previous.params !== undefined
      ? previous.params
      : given;
  const claimed = await claimNewAddresses(input.id, params, previous, deps);
  const { token, tokenHash } = recordToken(previous, input.newToken === true);
  const record: InstanceRecord = {
    id: input.id,
    kind: prepared.kind,
    tokenHash,
    etag: `"${digest.slice(0, 32)}"`,
    bodyKey,
    ...(inline ? { inlineBody: packInlineBody(prepared.body) } : {}),
    writeId,
    size: prepared.body.byteLength,
    oneTime: data.oneTime ?? false,
    createdAt: previous?.createdAt ?? now.toISOString(),
    updatedAt: now.toISOString(),
    ...(prepared.specVersion === undefined ? {} : { specVersion: prepared.specVersion }),
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt.toISOString() }),
    params,
  };
  await writeRecord(record, previous, { bodyWrittenAt, claimed }, deps);
  const dropped = (previous?.params?.ips ?? []).filter((ip) => !params.ips.includes(ip));
  if (dropped.length > 0) await deps.instances.releaseAddresses(input.id, dropped).catch(() => undefined);
  return resultOf(previous, token, record, prepared);
}

/** The booting instance already has the reservation's URL, token and all: its first config keeps it. */
function recordToken(
  previous: InstanceRecord | undefined,
  newToken: boolean,
): { token?: string; tokenHash: string } {
  if (previous?.reservedUntil !== undefined && !newToken) return { tokenHash: previous.tokenHash };
  const token = newInstanceToken();
  return { token, tokenHash: hashInstanceToken(token) };
}

/** The conditional record write; on failure the addresses this PUT claimed are released again. */
async function writeRecord(
  record: InstanceRecord,
  previous: InstanceRecord | undefined,
  put: { bodyWrittenAt: number; claimed: string[] },
  deps: InstanceServiceDeps,
): Promise<void> {
  try {
    if (performance.now() - put.bodyWrittenAt > maxPutMs) {
      throw new TransientError('put-too-slow', 'the config store was too slow; nothing was changed, retry');
    }
    await deps.instances.put(record, previous);
  } catch (error) {
    // A racing PUT of the same id that won may hold some of the same addresses: keep those.
    const current =
      error instanceof InstanceConflictError
        ? await deps.instances.get(record.id).catch(() => undefined)
        : undefined;
    const keep = new Set(current?.params?.ips ?? []);
    const release = put.claimed.filter((ip) => !keep.has(ip));
    await deps.instances.releaseAddresses(record.id, release).catch(() => undefined);
    throw error;
  }
}

function resultOf(
  previous: InstanceRecord | undefined,
  token: string | undefined,
  record: InstanceRecord,
  prepared: PreparedBody,
): PutInstanceResult {
  return {
    created: previous === undefined,
    ...(token === undefined ? {} : { token }),
    record,
    warnings: prepared.warnings,
  };
}

/** Claims the addresses the previous record did not hold yet; returns them, for undoing a failed PUT. */
export async function claimNewAddresses(
  id: string,
  params: InstanceParams,
  previous: InstanceRecord | undefined,
  deps: InstanceServiceDeps,
): Promise<string[]> {
  if (params.ips.length === 0) return [];
  const held = new Set(previous?.params?.ips ?? []);
  const conflict = await deps.instances.claimAddresses(id, params.ips);
  if (conflict !== undefined) throw new AddressInUseError(conflict.address, conflict.holder);
  return params.ips.filter((ip) => !held.has(ip));
}
