import * as z from 'zod';
import { PermanentError } from '../errors.ts';
import { instanceParamsShape, paramsFromBody } from '../metadata/params.ts';
import type { InstanceServiceDeps } from './deps.ts';
import {
  assertInstanceId,
  InstanceNotFoundError,
  InvalidInstanceConfigError,
  renderZodPath,
} from './errors.ts';
import { claimNewAddresses } from './put-config.ts';
import { deleteInstance } from './service.ts';
import { hashInstanceToken, newInstanceToken } from './tokens.ts';
import {
  type ConfigKind,
  type InstanceRecord,
  instanceIdPattern,
  type ReservationState,
  reservationState,
} from './types.ts';

/** A reservation that names no deadline waits this long for its config. */
export const defaultReservationMs = 60 * 60 * 1000;
/** Beyond this a reservation is a mistake (a VM does not wait a week in its initramfs). */
export const maxReservationMs = 7 * 24 * 60 * 60 * 1000;

/** Reserve, for an id that already has a record: reserving must never take over a configured instance. */
export class InstanceExistsError extends PermanentError {
  constructor(id: string, record: InstanceRecord) {
    const what =
      record.reservedUntil === undefined
        ? 'has a config'
        : `is already reserved until ${record.reservedUntil}`;
    super(
      'already-exists',
      `instance "${id}" ${what}; put its config (that keeps the reserved token), or delete it and reserve again`,
    );
    this.name = 'InstanceExistsError';
  }
}

/** A list or bulk query parameter that cannot be used; `path` names it (`?prefix`). */
export class InvalidAdminQueryError extends PermanentError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('invalid-query', `${path.slice(1)} ${message}`);
    this.name = 'InvalidAdminQueryError';
    this.path = path;
  }
}

const reserveBodySchema = z.strictObject({
  deadline: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 date-time' }).optional(),
  ...instanceParamsShape,
});

export interface IssuedToken {
  /** Shown once; only its hash is kept. */
  token: string;
  record: InstanceRecord;
}

/**
 * Create a record with no config yet, so an instance booted before its config was registered is told
 * 503 (retry) rather than 404 (give up) until `deadline`. The token is issued now, since the instance is
 * booted with it; the first PUT keeps it. The body takes the instance parameters a PUT takes, so the
 * metadata routes can tell the instance by its address while it waits.
 */
export async function reserveInstance(
  input: { id: string; body: unknown },
  deps: InstanceServiceDeps,
): Promise<IssuedToken> {
  assertInstanceId(input.id);
  const parsed = reserveBodySchema.safeParse(input.body ?? {});
  if (!parsed.success) {
    throw new InvalidInstanceConfigError(
      parsed.error.issues.map((issue) => ({ path: renderZodPath(issue.path), message: issue.message })),
    );
  }
  const now = deps.clock();
  const deadline =
    parsed.data.deadline === undefined
      ? new Date(now.getTime() + defaultReservationMs)
      : new Date(parsed.data.deadline);
  if (deadline.getTime() <= now.getTime()) {
    throw new InvalidInstanceConfigError([{ path: '$.deadline', message: 'is in the past' }]);
  }
  if (deadline.getTime() - now.getTime() > maxReservationMs) {
    throw new InvalidInstanceConfigError([
      { path: '$.deadline', message: 'is more than 7 days ahead; reserve closer to the boot' },
    ]);
  }
  const previous = await deps.instances.get(input.id);
  if (previous !== undefined) throw new InstanceExistsError(input.id, previous);
  const params = paramsFromBody(parsed.data);
  const claimed = await claimNewAddresses(input.id, params, undefined, deps);
  const token = newInstanceToken();
  const record: InstanceRecord = {
    id: input.id,
    kind: 'ignition',
    tokenHash: hashInstanceToken(token),
    etag: '',
    bodyKey: '',
    size: 0,
    oneTime: false,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    reservedUntil: deadline.toISOString(),
    params,
  };
  try {
    await deps.instances.put(record, undefined);
  } catch (error) {
    await deps.instances.releaseAddresses(input.id, claimed).catch(() => undefined);
    throw error;
  }
  return { token, record };
}

/**
 * A new token for the same config (or reservation): the old one stops working with this write, since
 * every fetch compares against the stored hash. The write is conditional on the record read, like a PUT.
 */
export async function revokeInstanceToken(id: string, deps: InstanceServiceDeps): Promise<IssuedToken> {
  assertInstanceId(id);
  const previous = await deps.instances.get(id);
  if (previous === undefined) throw new InstanceNotFoundError(id);
  const token = newInstanceToken();
  const record: InstanceRecord = {
    ...previous,
    tokenHash: hashInstanceToken(token),
    updatedAt: deps.clock().toISOString(),
  };
  await deps.instances.put(record, previous);
  return { token, record };
}

/** What a listing shows of an instance: never its token hash or body key. */
export interface InstanceSummary {
  id: string;
  state: ReservationState;
  kind?: ConfigKind;
  specVersion?: string;
  size?: number;
  oneTime: boolean;
  consumedAt?: string;
  expiresAt?: string;
  reservedUntil?: string;
  ips: string[];
  createdAt: string;
  updatedAt: string;
}

export function summarizeInstance(record: InstanceRecord, now: Date): InstanceSummary {
  const state = reservationState(record, now);
  const optional = {
    kind: state === 'ready' ? record.kind : undefined,
    specVersion: record.specVersion,
    size: state === 'ready' ? record.size : undefined,
    consumedAt: record.consumedAt,
    expiresAt: record.expiresAt,
    reservedUntil: record.reservedUntil,
  };
  return {
    id: record.id,
    state,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
    oneTime: record.oneTime,
    ips: record.params?.ips ?? [],
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

export const defaultListLimit = 100;
export const maxListLimit = 1000;

/** The longest prefix worth asking for: an id is at most 128 characters. */
const prefixPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `?prefix=`: empty (every instance) or the start of an id. */
export function parsePrefix(value: string | undefined): string {
  if (value === undefined || value === '') return '';
  if (!prefixPattern.test(value)) {
    throw new InvalidAdminQueryError(
      '?prefix',
      `${JSON.stringify(value.slice(0, 40))} cannot start an instance id: use letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  return value;
}

/** `?limit=`: a whole number from 1 to `maxListLimit`, default `defaultListLimit`. */
export function parseLimit(value: string | undefined): number {
  if (value === undefined || value === '') return defaultListLimit;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > maxListLimit) {
    throw new InvalidAdminQueryError(
      '?limit',
      `${JSON.stringify(value.slice(0, 40))} is not a whole number from 1 to ${maxListLimit}`,
    );
  }
  return Number(value);
}

/** The cursor is opaque to callers (the last id of the page, base64url), so its form may change. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** `?cursor=`: what a page's `next` was, unchanged. */
export function parseCursor(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const id = /^[A-Za-z0-9_-]{1,176}$/.test(value) ? Buffer.from(value, 'base64url').toString('utf8') : '';
  if (!instanceIdPattern.test(id) || encodeCursor(id) !== value) {
    throw new InvalidAdminQueryError(
      '?cursor',
      'is not a cursor this API gave out: pass the "next" of the previous page unchanged, or leave it out to start again',
    );
  }
  return id;
}

export interface InstanceListPage {
  instances: InstanceSummary[];
  /** Pass as `?cursor=` for the next page; absent on the last page. */
  next?: string;
}

export async function listInstances(
  query: { prefix: string; limit: number; after?: string },
  deps: InstanceServiceDeps,
): Promise<InstanceListPage> {
  const page = await deps.instances.list(query.limit, query.after, query.prefix);
  const now = deps.clock();
  return {
    instances: page.records.map((record) => summarizeInstance(record, now)),
    ...(page.next === undefined ? {} : { next: encodeCursor(page.next) }),
  };
}

/**
 * Delete up to `limit` instances whose id starts with `prefix`, one at a time, each as DELETE does,
 * yielding each id once it is gone. The caller asks again while `more` comes back true, so a request's
 * work stays bounded whatever the fleet's size.
 */
export async function* deleteInstancesByPrefix(
  query: { prefix: string; limit: number },
  deps: InstanceServiceDeps,
): AsyncGenerator<string, { more: boolean }> {
  if (query.prefix === '') {
    throw new InvalidAdminQueryError('?prefix', 'is required: bulk delete never removes every instance');
  }
  const page = await deps.instances.list(query.limit, undefined, query.prefix);
  for (const record of page.records) {
    try {
      await deleteInstance(record.id, deps);
    } catch (error) {
      // Deleted by someone else in the meantime: it is gone either way.
      if (!(error instanceof InstanceNotFoundError)) throw error;
    }
    yield record.id;
  }
  return { more: page.next !== undefined };
}
