import { TransientError } from '../errors.ts';
import { contentTypes, type InstanceServiceDeps, readBody } from '../instances/service.ts';
import type { FetchOutcome, InstanceRecord, RouteFamily } from '../instances/types.ts';
import type { ServedConfig } from './merge.ts';

/** One metadata request by a known instance, as the audit records it. */
export interface MetadataRequest {
  record: InstanceRecord;
  family: RouteFamily;
  /** The protocol path asked for (`/openstack/latest/user_data`), capped for the audit. */
  path: string;
  sourceIp: string;
  userAgent: string;
}

export function auditMetadata(
  request: MetadataRequest,
  route: 'metadata' | InstanceRecord['kind'],
  outcome: FetchOutcome,
  deps: InstanceServiceDeps,
): void {
  deps.instances.recordFetch(request.record.id, {
    at: deps.clock().toISOString(),
    route,
    family: request.family,
    path: request.path.slice(0, 128),
    sourceIp: request.sourceIp.slice(0, 64),
    userAgent: request.userAgent.slice(0, 256),
    outcome,
  });
}

export type UserDataResult =
  | { status: 'ok'; body: Uint8Array; etag: string; contentType: string }
  | { status: 'not-found'; outcome: FetchOutcome };

/**
 * The instance's config, as its user data. The instance is already identified (by address or by the
 * proxy's signature), so no token is asked for; expiry and one-time use apply as on the token route: a
 * one-time Ignition config is used up by its first 200 through any route. cloud-config is read on every
 * boot, so serving it never uses it up.
 */
export async function readUserData(
  request: MetadataRequest,
  options: { consume: boolean; merge: (record: InstanceRecord, body: Uint8Array) => ServedConfig },
  deps: InstanceServiceDeps,
): Promise<UserDataResult> {
  const { record } = request;
  const notFound = (outcome: FetchOutcome): UserDataResult => {
    auditMetadata(request, record.kind, outcome, deps);
    return { status: 'not-found', outcome };
  };
  const now = deps.clock();
  try {
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now.getTime()) {
      return notFound('expired');
    }
    if (record.consumedAt !== undefined) return notFound('consumed');
    const body = await readBody(record, deps);
    const usedUp = record.oneTime && record.kind === 'ignition';
    if (usedUp && options.consume) {
      const won = await deps.instances.consume(record.id, record.tokenHash, now);
      if (!won) return notFound('consumed');
    }
    auditMetadata(request, record.kind, 'served', deps);
    const served = options.merge(record, body);
    return { status: 'ok', ...served, contentType: contentTypes[record.kind] };
  } catch (error) {
    if (error instanceof TransientError) auditMetadata(request, record.kind, 'unavailable', deps);
    throw error;
  }
}
