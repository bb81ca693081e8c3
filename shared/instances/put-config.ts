import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { CldistConfig } from '../config.ts';
import { TransientError } from '../errors.ts';
import { hasParams, type InstanceParams, paramsFromBody } from '../metadata/params.ts';
import type { InstanceServiceDeps } from './deps.ts';
import { AddressInUseError, assertInstanceId, InstanceConflictError } from './errors.ts';
import type { ValidationIssue } from './ignition.ts';
import { packInlineBody, storesInline } from './inline-body.ts';
import { contentTypes, type PreparedBody, type PutBody, parsePutBody, prepareBody } from './put-body.ts';
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

/** A PUT's checked config and the key its body goes under: everything that needs no ledger read. */
export interface PreparedPut {
  id: string;
  data: PutBody;
  expiresAt: Date | undefined;
  prepared: PreparedBody;
  digest: string;
  /** Empty when the body goes into the record itself (`inlineBody`). */
  bodyKey: string;
  inlineBody?: Uint8Array;
  writeId: string;
}

/** Checks a PUT (id, body shape, the config itself); throws InvalidInstanceConfigError naming each issue. */
export function preparePut(
  input: { id: string; body: unknown; text?: string; strict?: boolean },
  now: Date,
  config: CldistConfig,
): PreparedPut {
  assertInstanceId(input.id);
  const { data, expiresAt } = parsePutBody(input.body, input.text, now);
  const prepared = prepareBody(data, config, input.strict ?? false);
  const digest = createHash('sha256').update(prepared.body).digest('hex');
  const writeId = randomBytes(8).toString('hex');
  const inline = storesInline(prepared.body.byteLength, config.instances.inlineBodyMaxBytes);
  const bodyKey = inline
    ? ''
    : `instances/${input.id}/${digest}.${writeId}.${prepared.kind === 'ignition' ? 'ign' : 'yaml'}`;
  return {
    id: input.id,
    data,
    expiresAt,
    prepared,
    digest,
    bodyKey,
    ...(inline ? { inlineBody: packInlineBody(prepared.body) } : {}),
    writeId,
  };
}

/** Where a PUT's body goes before its record: the one place that decides it, for single and bulk PUTs. */
export async function writeBody(put: PreparedPut, deps: Pick<InstanceServiceDeps, 'bodies'>): Promise<void> {
  if (put.bodyKey === '') return;
  await deps.bodies.put(put.bodyKey, put.prepared.body, { contentType: contentTypes[put.prepared.kind] });
}

/** The record a prepared PUT writes over `previous`, and the token it issues (none if it keeps one). */
export function recordFor(
  put: PreparedPut,
  previous: InstanceRecord | undefined,
  now: Date,
  newToken: boolean,
): { record: InstanceRecord; token?: string; params: InstanceParams } {
  const given = paramsFromBody(put.data);
  // A reservation's addresses and names carry over to its first config unless that gives its own.
  const params =
    previous?.reservedUntil !== undefined && !hasParams(given) && previous.params !== undefined
      ? previous.params
      : given;
  const { token, tokenHash } = recordToken(previous, newToken);
  const { prepared, expiresAt } = put;
  const record: InstanceRecord = {
    id: put.id,
    kind: prepared.kind,
    tokenHash,
    etag: `"${put.digest.slice(0, 32)}"`,
    bodyKey: put.bodyKey,
    ...(put.inlineBody === undefined ? {} : { inlineBody: put.inlineBody }),
    writeId: put.writeId,
    size: prepared.body.byteLength,
    oneTime: put.data.oneTime ?? false,
    createdAt: previous?.createdAt ?? now.toISOString(),
    updatedAt: now.toISOString(),
    ...(prepared.specVersion === undefined ? {} : { specVersion: prepared.specVersion }),
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt.toISOString() }),
    params,
  };
  return { record, params, ...(token === undefined ? {} : { token }) };
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
  const now = deps.clock();
  const put = preparePut(input, now, config);
  const previous = await deps.instances.get(input.id);
  return putPrepared(put, previous, { newToken: input.newToken === true, now }, deps);
}

/** The ledger part of a PUT, once checked and its previous record read. */
export async function putPrepared(
  put: PreparedPut,
  previous: InstanceRecord | undefined,
  options: { newToken: boolean; now: Date },
  deps: InstanceServiceDeps,
): Promise<PutInstanceResult> {
  const bodyWrittenAt = performance.now();
  await writeBody(put, deps);
  const { record, token, params } = recordFor(put, previous, options.now, options.newToken);
  const claimed = await claimNewAddresses(put.id, params, previous, deps);
  await writeRecord(record, previous, { bodyWrittenAt, claimed }, deps);
  const dropped = (previous?.params?.ips ?? []).filter((ip) => !params.ips.includes(ip));
  if (dropped.length > 0) await deps.instances.releaseAddresses(put.id, dropped).catch(() => undefined);
  return resultOf(previous, token, record, put.prepared);
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

export function resultOf(
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
