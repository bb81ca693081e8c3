import type { InstanceRepository } from '../../shared/instances/types.ts';

/** One instance as the status page lists it. */
export interface InstanceRow {
  id: string;
  addresses: string[];
  hostname?: string;
  /** `reserved`: no config put yet (its fetches answer 503 until one is, or its deadline passes). */
  kind: 'ignition' | 'cloud-config' | 'reserved';
  /** The newest audited fetch: when, through which route family and path, and from where. */
  lastFetch?: { at: string; family: string; path?: string; sourceIp: string; outcome: string };
}

export interface InstanceList {
  rows: InstanceRow[];
  /** True when more instances exist than the page shows. */
  more: boolean;
  limit: number;
}

/**
 * The first `limit` instances in id order with their newest fetch: one list query and one audit query
 * per row, so the page costs the same however large the fleet is.
 */
export async function listInstanceRows(
  instances: Pick<InstanceRepository, 'list' | 'listAudit' | 'flush'>,
  limit: number,
): Promise<InstanceList> {
  await instances.flush().catch(() => undefined);
  const page = await instances.list(limit);
  const rows = await Promise.all(
    page.records.map(async (record): Promise<InstanceRow> => {
      const [newest] = await instances.listAudit(record.id, 1);
      return {
        id: record.id,
        addresses: record.params?.ips ?? [],
        kind: record.reservedUntil === undefined ? record.kind : 'reserved',
        ...(record.params?.hostname === undefined ? {} : { hostname: record.params.hostname }),
        ...(newest === undefined
          ? {}
          : {
              lastFetch: {
                at: newest.at,
                family: newest.family ?? 'token',
                sourceIp: newest.sourceIp,
                outcome: newest.outcome,
                ...(newest.path === undefined ? {} : { path: newest.path }),
              },
            }),
      };
    }),
  );
  return { rows, more: page.next !== undefined, limit };
}
