import { channelNames, type SourceConfig, sourceOfChannel } from '../config-sources.ts';
import type { CurrentLedger } from '../ledger/current.ts';
import { cachedUpdateSources, noVerifiedPayloads } from './cached-sources.ts';
import type { FleetRecorder } from './fleet-record.ts';
import type { UpdateGroupStore } from './groups.ts';
import { createOmahaService, type OmahaService } from './omaha-service.ts';
import type { UpdatePayloadLookup } from './payload-record.ts';

/** What the update routes need: the Omaha service, the group store and a clock. */
export interface UpdateRouteDeps {
  omaha: OmahaService;
  groups: UpdateGroupStore;
  clock: () => Date;
}

/** The parts each host (Lambda, `serve`, tests, benchmarks) hands the update service. */
export interface UpdateServiceParts {
  groups: UpdateGroupStore;
  /** The ledger's current pointers; a group's channel is looked up with {@link sourceOfChannel}. */
  current: Pick<CurrentLedger, 'getCurrent'>;
  /** Verified payload facts; without them no update is ever offered. */
  payloads?: UpdatePayloadLookup;
  /** Told of every check-in; without it check-ins are not recorded. */
  recorder?: FleetRecorder;
  clock: () => Date;
  /** How long groups, current versions and payload facts are reused (default 5 s). */
  cacheTtlMs?: number;
  onRecordError?: (error: unknown) => void;
}

export interface UpdateServiceSettings {
  /** The mirror's public base URL (for example `http://host:8080/mirror`, or the CloudFront URL). */
  mirrorBaseUrl: string;
  /** The configured sources: their channel names are the default groups. */
  sources: readonly SourceConfig[];
}

/** The Omaha endpoint and the group admin routes, over one set of cached readers. */
export function createUpdateService(
  parts: UpdateServiceParts,
  settings: UpdateServiceSettings,
): UpdateRouteDeps {
  const sources = cachedUpdateSources(
    {
      getGroup: (name) => parts.groups.getGroup(name),
      getCurrent: async (channel, board) => {
        const source = sourceOfChannel(settings.sources, channel);
        return source === undefined ? undefined : parts.current.getCurrent({ source, channel, board });
      },
      payloads: parts.payloads ?? noVerifiedPayloads,
    },
    parts.cacheTtlMs === undefined ? {} : { ttlMs: parts.cacheTtlMs },
  );
  const omaha = createOmahaService(
    {
      sources,
      admitInPeriod: (...args) => parts.groups.admitInPeriod(...args),
      clock: parts.clock,
      ...(parts.recorder === undefined ? {} : { recorder: parts.recorder }),
      ...(parts.onRecordError === undefined ? {} : { onRecordError: parts.onRecordError }),
    },
    { mirrorBaseUrl: settings.mirrorBaseUrl, channels: channelNames(settings.sources) },
  );
  return { omaha, groups: parts.groups, clock: parts.clock };
}
