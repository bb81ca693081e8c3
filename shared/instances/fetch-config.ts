import { randomBytes } from 'node:crypto';
import { TransientError } from '../errors.ts';
import type { InstanceServiceDeps } from './deps.ts';
import { unpackInlineBody } from './inline-body.ts';
import { contentTypes } from './put-body.ts';
import { hashInstanceToken, instanceTokenMatches } from './tokens.ts';
import {
  type ConfigKind,
  type FetchOutcome,
  type InstanceRecord,
  instanceIdPattern,
  reservationState,
} from './types.ts';

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

/** The record's body: unpacked from the record when inline (no store read), else cached or read from the store. */
export async function readBody(record: InstanceRecord, deps: InstanceServiceDeps): Promise<Uint8Array> {
  if (record.inlineBody !== undefined) return unpackInlineBody(record, record.inlineBody);
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
