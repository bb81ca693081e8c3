import type { RecentBoot } from '../../shared/boot/recent.ts';
import { pollTargets, type SourceConfig } from '../../shared/config-sources.ts';
import type { ArtifactRecord, Ledger, StreamRef } from '../../shared/ledger/ledger.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { type ReleaseState, releaseState } from '../../shared/mirror/release-state.ts';
import { boardBaseUrl } from '../../shared/release/layout.ts';
import type { KeyringStatus } from '../../shared/verify/types.ts';
import type { DiskGuardState } from '../runtime/disk-guard.ts';
import type { FleetStatusView } from './fleet.ts';
import type { InstanceList } from './instances.ts';

/** What a person can check at a glance; `failed` covers a bad signature, the one thing never to ignore. */
export type ArtifactDisplayState = 'verified' | 'missing' | 'failed' | 'pending' | 'awaiting-trust';

export interface ArtifactStatus {
  name: string;
  state: ArtifactDisplayState;
  required: boolean;
  size?: number;
  /** Fingerprint of the signing (sub)key. */
  signer?: string;
  signatureCreated?: string;
  error?: string;
}

export interface ReleaseStatus {
  version: string;
  state: ReleaseState;
  claimedAt: string;
  finalizedAt?: string;
  artifacts: ArtifactStatus[];
}

export interface ChannelStatus {
  source: string;
  /** The source's folder in the mirror ("" for the mirror's root). */
  mirrorPath: string;
  channel: string;
  board: string;
  upstreamUrl: string;
  latestUpstream?: string;
  lastCheckedAt?: string;
  /** The last poll's failure, if the last poll failed. */
  pollError?: { url: string; cause: string; at: string };
  currentMirrored?: string;
  /** Newest first. */
  releases: ReleaseStatus[];
}

export interface SigningKeyView {
  primaryKeyFingerprint: string;
  signingKeyFingerprint: string;
  expires?: string;
  expiringSoon: boolean;
}

export interface StatusModel {
  generatedAt: string;
  demo: boolean;
  channels: ChannelStatus[];
  signingKeys: SigningKeyView[];
  keyWarningDays: number;
  /** Newest first. */
  events: CldistEvent[];
  worker: { inFlight: number; concurrency: number };
  mirrorBaseUrl: string;
  /** Registered instances (the first page), when the runner serves instance configs. */
  instances?: InstanceList;
  /** Free space of the data dir, and whether mirroring is paused for lack of it. */
  disk?: DiskGuardState;
  /**
   * Config fetches refused since start, by reason (`unknown-instance`, `wrong-token`, …): counted, never
   * stored per id, because anyone can send them.
   */
  refusedFetches?: Record<string, number>;
  /** Machines that asked to network-boot lately, newest first, matched or not. */
  recentBoots?: RecentBoot[];
  /** Machines checking in for updates: counts, versions over time, the first machines (ids redacted). */
  fleet?: FleetStatusView;
}

export interface PollProblem {
  url: string;
  cause: string;
  at: string;
}

export interface StatusSources {
  ledger: Pick<Ledger, 'listReleases' | 'getRelease' | 'listPollStates' | 'getCurrent'>;
  mirrorSources: SourceConfig[];
  keyring: () => KeyringStatus | undefined;
  keyWarningDays: number;
  /** Newest first. */
  recentEvents: () => CldistEvent[];
  pollProblem: (stream: StreamRef) => PollProblem | undefined;
  worker: () => { inFlight: number; concurrency: number };
  demo: boolean;
  mirrorBaseUrl: string;
  /** The instances section; absent, the page has none. */
  instances?: () => Promise<InstanceList>;
  disk?: () => DiskGuardState;
  refusedFetches?: () => Record<string, number>;
  recentBoots?: () => RecentBoot[];
  fleet?: () => Promise<FleetStatusView>;
  /** How many releases per channel and board to show. */
  releasesShown?: number;
  clock?: () => Date;
}

function artifactView(record: ArtifactRecord | undefined, name: string, required: boolean): ArtifactStatus {
  if (record === undefined) return { name, state: 'pending', required };
  const state: ArtifactDisplayState =
    record.state === 'failed_verification'
      ? 'failed'
      : record.state === 'awaiting_trust'
        ? 'awaiting-trust'
        : record.state;
  return {
    name,
    state,
    required: record.required,
    size: record.size,
    signer: record.signingKeyFingerprint,
    signatureCreated: record.signatureCreated,
    error: record.state === 'verified' ? undefined : record.lastError,
  };
}

/**
 * Assemble the status from the ledger, the keyring and the runner's memory. Reads only, so a page left
 * open refreshing never changes anything.
 */
export async function buildStatus(sources: StatusSources): Promise<StatusModel> {
  const clock = sources.clock ?? (() => new Date());
  const shown = sources.releasesShown ?? 8;
  const pollStates = await sources.ledger.listPollStates();
  const channels: ChannelStatus[] = [];
  for (const { source, channel, board } of pollTargets(sources.mirrorSources)) {
    const stream: StreamRef = { source: source.name, channel: channel.name, board };
    const poll = pollStates.find(
      (p) => p.source === source.name && p.channel === channel.name && p.board === board,
    );
    const current = await sources.ledger.getCurrent(stream);
    const records = (await sources.ledger.listReleases(stream)).slice(-shown).reverse();
    const releases: ReleaseStatus[] = [];
    for (const record of records) {
      const detail = await sources.ledger.getRelease(record);
      if (detail === undefined) continue;
      const artifacts = detail.artifacts.map((name) =>
        artifactView(
          detail.artifactStates.find((a) => a.artifact === name),
          name,
          detail.required.includes(name),
        ),
      );
      releases.push({
        version: detail.version,
        state: releaseState(detail),
        claimedAt: detail.claimedAt,
        finalizedAt: detail.finalizedAt,
        artifacts,
      });
    }
    channels.push({
      ...stream,
      mirrorPath: source.mirrorPath,
      upstreamUrl: boardBaseUrl(source, channel, board),
      latestUpstream: poll?.lastVersion,
      lastCheckedAt: poll?.checkedAt,
      pollError: sources.pollProblem(stream),
      currentMirrored: current?.version,
      releases,
    });
  }
  const keyring = sources.keyring();
  const expiring = new Set(keyring?.expiringSoon.map((k) => k.signingKeyFingerprint) ?? []);
  return {
    generatedAt: clock().toISOString(),
    demo: sources.demo,
    channels,
    signingKeys: (keyring?.current ?? []).map((key) => ({
      primaryKeyFingerprint: key.primaryKeyFingerprint,
      signingKeyFingerprint: key.signingKeyFingerprint,
      expires: key.expires?.toISOString(),
      expiringSoon: expiring.has(key.signingKeyFingerprint),
    })),
    keyWarningDays: sources.keyWarningDays,
    events: sources.recentEvents().slice(0, 50),
    worker: sources.worker(),
    mirrorBaseUrl: sources.mirrorBaseUrl,
    ...(sources.instances === undefined ? {} : { instances: await sources.instances() }),
    ...(sources.disk === undefined ? {} : { disk: sources.disk() }),
    ...(sources.refusedFetches === undefined ? {} : { refusedFetches: sources.refusedFetches() }),
    ...(sources.recentBoots === undefined ? {} : { recentBoots: sources.recentBoots() }),
    ...(sources.fleet === undefined ? {} : { fleet: await sources.fleet() }),
  };
}
