import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { CldistConfig } from '../config.ts';
import { PermanentError, TransientError } from '../errors.ts';
import { type InstanceParams, instanceParamsShape, paramsFromBody } from '../metadata/params.ts';
import type { ObjectStore } from '../store/types.ts';
import { validateCloudConfig } from './cloud-config.ts';
import { formatValidationIssues, type ValidationIssue, validateIgnition } from './ignition.ts';
import { hashInstanceToken, instanceTokenMatches, newInstanceToken } from './tokens.ts';
import {
  type AuditEntry,
  type ConfigKind,
  type FetchOutcome,
  type InstanceRecord,
  type InstanceRepository,
  instanceIdPattern,
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

/** Bodies are content-addressed, so a cached body under a key is never stale. */
export interface BodyCache {
  get(key: string): Uint8Array | undefined;
  set(key: string, body: Uint8Array): void;
}

/** Bounded by bytes, least recently used first out, so a fleet of large configs cannot exhaust memory. */
export function createBodyCache(maxBytes = 64 * 1024 * 1024): BodyCache {
  const entries = new Map<string, Uint8Array>();
  let bytes = 0;
  return {
    get(key) {
      const body = entries.get(key);
      if (body !== undefined) {
        entries.delete(key);
        entries.set(key, body);
      }
      return body;
    },
    set(key, body) {
      if (body.byteLength > maxBytes || entries.has(key)) return;
      entries.set(key, body);
      bytes += body.byteLength;
      for (const [oldKey, oldBody] of entries) {
        if (bytes <= maxBytes) break;
        entries.delete(oldKey);
        bytes -= oldBody.byteLength;
      }
    },
  };
}

export interface InstanceServiceDeps {
  instances: InstanceRepository;
  /** The config store (S3 config bucket, or a local folder). */
  bodies: ObjectStore;
  clock: () => Date;
  bodyCache?: BodyCache;
}

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

function renderZodPath(path: readonly PropertyKey[]): string {
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
      { path: '$', message: 'expected exactly one of "ignition" or "cloudConfig"' },
    ]);
  }
  if (input.cloudConfig !== undefined) {
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
  return {
    kind: 'ignition',
    body: Buffer.from(text, 'utf8'),
    warnings: result.warnings,
    ...(result.version === undefined ? {} : { specVersion: result.version }),
  };
}

export interface PutInstanceResult {
  created: boolean;
  /** Shown once; only its hash is kept. */
  token: string;
  record: InstanceRecord;
  warnings: ValidationIssue[];
}

/**
 * Validate and store an instance config, issuing a fresh token. The body is written before the record
 * that points at it, so a fetch never sees a record whose body is missing; the previous body is removed
 * only after the new record is in place.
 */
export async function putInstanceConfig(
  input: { id: string; body: unknown; strict?: boolean },
  deps: InstanceServiceDeps,
  config: CldistConfig,
): Promise<PutInstanceResult> {
  assertInstanceId(input.id);
  const parsed = putBodySchema.safeParse(input.body);
  if (!parsed.success) {
    throw new InvalidInstanceConfigError(
      parsed.error.issues.map((issue) => ({ path: renderZodPath(issue.path), message: issue.message })),
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
  const bodyKey = `instances/${input.id}/${digest}.${prepared.kind === 'ignition' ? 'ign' : 'yaml'}`;
  const previous = await deps.instances.get(input.id);
  await deps.bodies.put(bodyKey, prepared.body, { contentType: contentTypes[prepared.kind] });
  const params = paramsFromBody(parsed.data);
  const claimed = await claimNewAddresses(input.id, params, previous, deps);
  const token = newInstanceToken();
  const record: InstanceRecord = {
    id: input.id,
    kind: prepared.kind,
    tokenHash: hashInstanceToken(token),
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
    await deps.instances.put(record);
  } catch (error) {
    await deps.instances.releaseAddresses(input.id, claimed).catch(() => undefined);
    throw error;
  }
  const dropped = (previous?.params?.ips ?? []).filter((ip) => !params.ips.includes(ip));
  if (dropped.length > 0) await deps.instances.releaseAddresses(input.id, dropped).catch(() => undefined);
  if (previous !== undefined && previous.bodyKey !== bodyKey) {
    await deps.bodies.delete(previous.bodyKey).catch(() => undefined);
  }
  return { created: previous === undefined, token, record, warnings: prepared.warnings };
}

/** Claims the addresses the previous record did not hold yet; returns them, for undoing a failed PUT. */
async function claimNewAddresses(
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

export interface InstanceDescription {
  id: string;
  kind: ConfigKind;
  specVersion?: string;
  etag: string;
  size: number;
  oneTime: boolean;
  consumedAt?: string;
  expiresAt?: string;
  createdAt: string;
  updatedAt: string;
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
  const { tokenHash: _hidden, bodyKey: _internal, ...visible } = record;
  return { ...visible, audit };
}

/** The record goes first, so the instance stops being served even if removing the body fails. */
export async function deleteInstance(id: string, deps: InstanceServiceDeps): Promise<void> {
  assertInstanceId(id);
  const record = await deps.instances.get(id);
  if (record === undefined) throw new InstanceNotFoundError(id);
  await deps.instances.delete(id);
  await deps.instances.releaseAddresses(id, record.params?.ips ?? []);
  await deps.bodies.delete(record.bodyKey);
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
  | { status: 'not-found'; outcome: FetchOutcome };

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

/**
 * Serve an instance its config. Every way of not getting it (unknown id, wrong or missing token, wrong
 * route, expired, consumed) gives the same answer, so the API cannot be used to enumerate instances, and
 * Ignition stops at once instead of retrying. A store that is down throws TransientError (503: Ignition
 * retries). Every attempt is audited.
 */
export async function fetchInstanceConfig(
  input: FetchConfigInput,
  deps: InstanceServiceDeps,
): Promise<FetchConfigResult> {
  const now = deps.clock();
  const audit = (outcome: FetchOutcome) => {
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
  if (!instanceIdPattern.test(input.id)) return { status: 'not-found', outcome: 'unknown-instance' };
  try {
    const record = await deps.instances.get(input.id);
    if (record === undefined) return notFound(input.token === undefined ? 'no-token' : 'unknown-instance');
    if (input.token === undefined) return notFound('no-token');
    if (!instanceTokenMatches(input.token, record.tokenHash)) return notFound('wrong-token');
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

/** The deepest real Ignition path is under 10 levels; anything far deeper is an attack on the stack. */
const maxIgnitionDepth = 64;

/** Depth of a JSON value, iteratively (no recursion to overflow), stopping once past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== 'object') continue;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}
