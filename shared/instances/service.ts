import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as z from 'zod';
import type { CldistConfig } from '../config.ts';
import { PermanentError, TransientError } from '../errors.ts';
import { hasParams, type InstanceParams, instanceParamsShape, paramsFromBody } from '../metadata/params.ts';
import type { ObjectStore } from '../store/types.ts';
import type { BodyCache } from './body-cache.ts';
import { validateCloudConfig } from './cloud-config.ts';
import { InstanceConflictError } from './errors.ts';
import { formatValidationIssues, type ValidationIssue, validateIgnition } from './ignition.ts';
import { maxIgnitionDepth, nestingDepth } from './json-depth.ts';
import { hashInstanceToken, instanceTokenMatches, newInstanceToken } from './tokens.ts';
import {
  type AuditEntry,
  type ConfigKind,
  type FetchOutcome,
  type InstanceRecord,
  type InstanceRepository,
  instanceIdPattern,
  type ReservationState,
  reservationState,
} from './types.ts';

/** Admin input that cannot be stored as given; `issues` name each bad field by JSON path. */
export class InvalidInstanceConfigError extends PermanentError {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super('invalid-instance-config', formatValidationIssues(issues));
    this.name = 'InvalidInstanceConfigError';
    this.issues = issues;
  }
}

/** Admin routes only: instance routes never say whether an id exists. */
export class InstanceNotFoundError extends PermanentError {
  constructor(id: string) {
    super('not-found', `no instance "${id}"`);
    this.name = 'InstanceNotFoundError';
  }
}

/** The PUT names an address another instance holds; `holder` is that instance. */
export class AddressInUseError extends PermanentError {
  readonly address: string;
  readonly holder: string;
  constructor(address: string, holder: string) {
    super(
      'address-in-use',
      `address ${address} belongs to instance "${holder}"; remove it there first (or delete that instance)`,
    );
    this.name = 'AddressInUseError';
    this.address = address;
    this.holder = holder;
  }
}

export { type BodyCache, createBodyCache } from './body-cache.ts';

/**
 * Told about every fetch refused before the caller showed the instance's token (unknown id, no token,
 * wrong token), and about store or ledger failures before that point. These are counted in aggregate
 * (a metric on AWS, a counter in the logs on one machine), never stored per id: anyone can send them, so
 * storing them would let anyone grow the ledger.
 */
export type RefusedFetchCounter = (outcome: FetchOutcome, route: ConfigKind) => void;

export interface InstanceServiceDeps {
  instances: InstanceRepository;
  /** The config store (S3 config bucket, or a local folder). */
  bodies: ObjectStore;
  clock: () => Date;
  bodyCache?: BodyCache;
  countRefused?: RefusedFetchCounter;
}

/**
 * A PUT whose record write comes later than this after its body write gives up (503) instead: the body
 * sweep may collect a body no record has pointed at for `bodySweepGraceMs`, and this margin keeps a slow
 * PUT from ever pointing a record at a collected body.
 */
export const maxPutMs = 60_000;

/**
 * Parsing YAML is linear but not cheap (several microseconds a key), and it runs on the event loop, so a
 * cloud-config is capped well below the body limit: at 64 KiB, above what user data can carry on OpenStack
 * (Nova takes at most 65,535 bytes, base64-encoded) or EC2 (16 KiB), so no config that boots there is refused.
 */
export const maxCloudConfigBytes = 64 * 1024;

/** Ignition configs are small; anything near this is a mistake or an attack, and it bounds body memory. */
export const maxInstanceBodyBytes = 1024 * 1024;

export const contentTypes: Record<ConfigKind, string> = {
  ignition: 'application/vnd.coreos.ignition+json',
  'cloud-config': 'text/cloud-config; charset=utf-8',
};

const putBodySchema = z.strictObject({
  ignition: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
  cloudConfig: z.string().optional(),
  oneTime: z.boolean().optional(),
  expiresAt: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 date-time' }).optional(),
  ...instanceParamsShape,
});

/** What a PUT body may be, for the message of a body that is neither. */
export const expectedBodyForms =
  'expected a raw Ignition config ({"ignition":{"version":"3.4.0"},"storage":…}) or the wrapped form ' +
  '{"ignition":{…} or "…", "oneTime"?, "expiresAt"?, "ips"?, "hostname"?, "sshKeys"?, …} ' +
  '(or {"cloudConfig":"#cloud-config…"})';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A raw Ignition config is known by its `ignition.version` (a string), which the wrapped form never has
 * at that place (there `ignition` is the whole config). It is wrapped here, as the text it came in when
 * that is known, so its bytes (and a `verification.hash` over them) are kept.
 */
export function unwrapRawIgnition(body: unknown, text?: string): unknown {
  if (!isObject(body) || !isObject(body.ignition) || typeof body.ignition.version !== 'string') return body;
  return { ignition: text ?? JSON.stringify(body) };
}

export function renderZodPath(path: readonly PropertyKey[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
}

/** Ids become DynamoDB keys and store keys; checking once here keeps both safe. */
export function assertInstanceId(id: string): void {
  if (!instanceIdPattern.test(id)) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.id',
        message: `expected 1 to 128 letters, digits, ".", "_" or "-" (starting with a letter or digit)`,
      },
    ]);
  }
}

interface PreparedBody {
  kind: ConfigKind;
  body: Uint8Array;
  specVersion?: string;
  warnings: ValidationIssue[];
}

function prepareBody(
  input: z.infer<typeof putBodySchema>,
  config: CldistConfig,
  strict: boolean,
): PreparedBody {
  const given = [input.ignition, input.cloudConfig].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new InvalidInstanceConfigError([
      { path: '$', message: `expected exactly one of "ignition" or "cloudConfig"; ${expectedBodyForms}` },
    ]);
  }
  if (input.cloudConfig !== undefined) {
    const bytes = Buffer.byteLength(input.cloudConfig);
    if (bytes > maxCloudConfigBytes) {
      throw new InvalidInstanceConfigError([
        {
          path: '$.cloudConfig',
          message:
            `is ${bytes} bytes; at most ${maxCloudConfigBytes} are accepted (more than OpenStack or EC2 ` +
            'user data can carry); ship large files through Ignition or fetch them at boot',
        },
      ]);
    }
    const issues = validateCloudConfig(input.cloudConfig);
    if (issues.length > 0) throw new InvalidInstanceConfigError(issues);
    return { kind: 'cloud-config', body: Buffer.from(input.cloudConfig, 'utf8'), warnings: [] };
  }
  let parsed: unknown = input.ignition;
  let text: string;
  if (typeof input.ignition === 'string') {
    text = input.ignition;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new InvalidInstanceConfigError([
        { path: '$.ignition', message: `not valid JSON: ${(cause as Error).message}` },
      ]);
    }
  } else {
    if (nestingDepth(parsed, maxIgnitionDepth) > maxIgnitionDepth) {
      throw new InvalidInstanceConfigError([
        {
          path: '$.ignition',
          message: `nested deeper than ${maxIgnitionDepth} levels; no Ignition spec needs that`,
        },
      ]);
    }
    text = JSON.stringify(input.ignition);
  }
  if (nestingDepth(parsed, maxIgnitionDepth) > maxIgnitionDepth) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.ignition',
        message: `nested deeper than ${maxIgnitionDepth} levels; no Ignition spec needs that`,
      },
    ]);
  }
  const result = validateIgnition(parsed, {
    allowLegacy: config.api.allowLegacyIgnition,
    unknownKeys: strict ? 'reject' : config.api.unknownIgnitionKeys,
  });
  if (result.errors.length > 0) throw new InvalidInstanceConfigError(result.errors);
  if (result.version?.startsWith('2.') === true && config.platform.baseIgnition !== undefined) {
    result.warnings.push({
      path: '$.ignition.version',
      message:
        'platform.baseIgnition is not merged into a 2.x config: an Ignition that reads 2.x cannot merge 3.x',
    });
  }
  return {
    kind: 'ignition',
    body: Buffer.from(text, 'utf8'),
    warnings: result.warnings,
    ...(result.version === undefined ? {} : { specVersion: result.version }),
  };
}

export interface PutInstanceResult {
  created: boolean;
  /** Shown once; only its hash is kept. Absent when the PUT kept a reservation's token. */
  token?: string;
  record: InstanceRecord;
  warnings: ValidationIssue[];
}

/**
 * Validate and store an instance config, issuing a fresh token. The body is written under a key of its
 * own before the record that points at it, so a fetch never sees a record whose body is missing. The
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
  const parsed = putBodySchema.safeParse(unwrapRawIgnition(input.body, input.text));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({
      path: renderZodPath(issue.path),
      message: issue.message,
    }));
    const atTop = parsed.error.issues.some((issue) => issue.path.length === 0);
    throw new InvalidInstanceConfigError(
      atTop ? [{ path: '$', message: expectedBodyForms }, ...issues] : issues,
    );
  }
  const now = deps.clock();
  const expiresAt = parsed.data.expiresAt === undefined ? undefined : new Date(parsed.data.expiresAt);
  if (expiresAt !== undefined && expiresAt.getTime() <= now.getTime()) {
    throw new InvalidInstanceConfigError([{ path: '$.expiresAt', message: 'is in the past' }]);
  }
  if (parsed.data.oneTime === true && parsed.data.cloudConfig !== undefined) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.oneTime',
        message: 'cloud-config is read on every boot, so it cannot be one-time; leave oneTime out',
      },
    ]);
  }
  const prepared = prepareBody(parsed.data, config, input.strict ?? false);
  const digest = createHash('sha256').update(prepared.body).digest('hex');
  const writeId = randomBytes(8).toString('hex');
  const bodyKey = `instances/${input.id}/${digest}.${writeId}.${prepared.kind === 'ignition' ? 'ign' : 'yaml'}`;
  const previous = await deps.instances.get(input.id);
  const bodyWrittenAt = performance.now();
  await deps.bodies.put(bodyKey, prepared.body, { contentType: contentTypes[prepared.kind] });
  const given = paramsFromBody(parsed.data);
  // A reservation's addresses and names carry over to its first config unless that gives its own.
  const params =
    previous?.reservedUntil !== undefined && !hasParams(given) && previous.params !== undefined
      ? previous.params
      : given;
  const claimed = await claimNewAddresses(input.id, params, previous, deps);
  // The booting instance already has the reservation's URL, token and all: its first config keeps it.
  let token: string | undefined;
  let tokenHash: string;
  if (previous?.reservedUntil !== undefined && input.newToken !== true) tokenHash = previous.tokenHash;
  else {
    token = newInstanceToken();
    tokenHash = hashInstanceToken(token);
  }
  const record: InstanceRecord = {
    id: input.id,
    kind: prepared.kind,
    tokenHash,
    etag: `"${digest.slice(0, 32)}"`,
    bodyKey,
    size: prepared.body.byteLength,
    oneTime: parsed.data.oneTime ?? false,
    createdAt: previous?.createdAt ?? now.toISOString(),
    updatedAt: now.toISOString(),
    ...(prepared.specVersion === undefined ? {} : { specVersion: prepared.specVersion }),
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt.toISOString() }),
    params,
  };
  try {
    if (performance.now() - bodyWrittenAt > maxPutMs) {
      throw new TransientError('put-too-slow', 'the config store was too slow; nothing was changed, retry');
    }
    await deps.instances.put(record, previous);
  } catch (error) {
    // A racing PUT of the same id that won may hold some of the same addresses: keep those.
    const current =
      error instanceof InstanceConflictError
        ? await deps.instances.get(input.id).catch(() => undefined)
        : undefined;
    const keep = new Set(current?.params?.ips ?? []);
    const release = claimed.filter((ip) => !keep.has(ip));
    await deps.instances.releaseAddresses(input.id, release).catch(() => undefined);
    throw error;
  }
  const dropped = (previous?.params?.ips ?? []).filter((ip) => !params.ips.includes(ip));
  if (dropped.length > 0) await deps.instances.releaseAddresses(input.id, dropped).catch(() => undefined);
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
  const { tokenHash: _hidden, bodyKey: _internal, kind, etag, size, ...visible } = record;
  const state = reservationState(record, deps.clock());
  return { ...visible, state, ...(state === 'ready' ? { kind, etag, size } : {}), audit };
}

/**
 * The record goes first, conditional on being the one read (InstanceConflictError otherwise), so the
 * instance stops being served even if removing the body fails. Its body can then go at once: body keys are
 * never reused, so no other record can point at it. A failure there leaves it to the sweep.
 */
export async function deleteInstance(id: string, deps: InstanceServiceDeps): Promise<void> {
  assertInstanceId(id);
  const record = await deps.instances.get(id);
  if (record === undefined) throw new InstanceNotFoundError(id);
  await deps.instances.delete(id, record);
  await deps.instances.releaseAddresses(id, record.params?.ips ?? []);
  if (record.bodyKey !== '') await deps.bodies.delete(record.bodyKey).catch(() => undefined);
}

export interface FetchConfigInput {
  id: string;
  kind: ConfigKind;
  token: string | undefined;
  sourceIp: string;
  userAgent: string;
  /** False for HEAD: look, but do not use up a one-time config. */
  consume: boolean;
}

export type FetchConfigResult =
  | { status: 'ok'; body: Uint8Array; etag: string; contentType: string; record: InstanceRecord }
  | { status: 'not-found'; outcome: FetchOutcome }
  /** Reserved with no config yet: answer 503 with Retry-After so the client comes back. */
  | { status: 'pending' };

export async function readBody(record: InstanceRecord, deps: InstanceServiceDeps): Promise<Uint8Array> {
  const cached = deps.bodyCache?.get(record.bodyKey);
  if (cached !== undefined) return cached;
  let body: Uint8Array | undefined;
  try {
    body = await deps.bodies.get(record.bodyKey);
  } catch (cause) {
    throw new TransientError('config-store-unavailable', 'config store unavailable', { cause });
  }
  if (body === undefined) {
    throw new TransientError('config-body-missing', `config body ${record.bodyKey} is not there (yet)`);
  }
  deps.bodyCache?.set(record.bodyKey, body);
  return body;
}

/** Compared against when there is no record, so an unknown id costs the same hashing as a wrong token. */
const absentTokenHash = hashInstanceToken(randomBytes(32).toString('base64url'));

/**
 * Serve an instance its config. Every way of not getting it (unknown id, wrong or missing token, wrong
 * route, expired, consumed) gives the same answer, so the API cannot be used to enumerate instances, and
 * Ignition stops at once instead of retrying. A store that is down throws TransientError (503: Ignition
 * retries), and so does a reserved instance with no config yet, until its deadline. Fetches by a caller
 * who showed the token are audited under the instance; the rest are only
 * counted (`countRefused`), so anyone without a token can neither grow the ledger nor time an audit write.
 */
export async function fetchInstanceConfig(
  input: FetchConfigInput,
  deps: InstanceServiceDeps,
): Promise<FetchConfigResult> {
  const now = deps.clock();
  let tokenShown = false;
  const audit = (outcome: FetchOutcome) => {
    if (!tokenShown) {
      deps.countRefused?.(outcome, input.kind);
      return;
    }
    deps.instances.recordFetch(input.id, {
      at: now.toISOString(),
      route: input.kind,
      family: 'token',
      sourceIp: input.sourceIp.slice(0, 64),
      userAgent: input.userAgent.slice(0, 256),
      outcome,
    });
  };
  const notFound = (outcome: FetchOutcome): FetchConfigResult => {
    audit(outcome);
    return { status: 'not-found', outcome };
  };
  if (!instanceIdPattern.test(input.id)) return notFound('unknown-instance');
  try {
    const record = await deps.instances.get(input.id);
    if (input.token === undefined) return notFound('no-token');
    const matches = instanceTokenMatches(input.token, record?.tokenHash ?? absentTokenHash);
    if (record === undefined) return notFound('unknown-instance');
    if (!matches) return notFound('wrong-token');
    tokenShown = true;
    const reservation = reservationState(record, now);
    if (reservation === 'lapsed') return notFound('reservation-lapsed');
    if (reservation === 'pending') {
      audit('pending');
      return { status: 'pending' };
    }
    if (record.kind !== input.kind) return notFound('wrong-kind');
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now.getTime()) {
      return notFound('expired');
    }
    if (record.consumedAt !== undefined) return notFound('consumed');
    const body = await readBody(record, deps);
    if (record.oneTime && input.consume) {
      const won = await deps.instances.consume(input.id, record.tokenHash, now);
      if (!won) return notFound('consumed');
    }
    audit('served');
    return { status: 'ok', body, etag: record.etag, contentType: contentTypes[record.kind], record };
  } catch (error) {
    if (error instanceof TransientError) audit('unavailable');
    throw error;
  }
}
