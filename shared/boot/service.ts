import type { CldistConfig } from '../config.ts';
import type { SourceConfig } from '../config-sources.ts';
import { TransientError } from '../errors.ts';
import { hashInstanceToken, newInstanceToken } from '../instances/tokens.ts';
import { type InstanceRepository, reservationState } from '../instances/types.ts';
import {
  type BootProfile,
  channelFolder,
  profileStream,
  pxeInitramfs,
  pxeKernel,
  type ReleaseFacts,
  resolveProfileVersion,
} from './profiles.ts';
import type { RecentBoots } from './recent.ts';
import {
  type BootLoader,
  type BootPlan,
  describeFacts,
  factsQuery,
  grubBootScript,
  grubLocalBootScript,
  grubWaitScript,
  ipxeBootScript,
  ipxeLocalBootScript,
  ipxeWaitScript,
} from './scripts.ts';
import {
  type BootRequestFacts,
  candidateKeys,
  compareSpecificity,
  describeSelectors,
  selectorsMatch,
} from './selectors.ts';
import type { BootStore, BootTokenEntry, StoredSelection } from './store.ts';

export interface BootDeps {
  store: BootStore;
  releases: ReleaseFacts;
  instances: Pick<InstanceRepository, 'get'>;
  clock: () => Date;
  /** The configured sources: a profile's channel is looked up in them (see `profileChannel`). */
  sources: readonly SourceConfig[];
  /** The status page's list of machines that asked; absent where nothing shows it. */
  recent?: RecentBoots;
}

/** Where a script points: the API (Ignition URLs, retries) and the mirror (kernel, initramfs, installer). */
export interface BootUrls {
  apiBaseUrl: string;
  mirrorBaseUrl: string;
}

/** Shown in place of a boot token by `cldist boot preview`, which must not mint a working one. */
export const previewTokenPlaceholder = 'BOOT-TOKEN-MINTED-PER-REQUEST';

/** A boot token in a script: the newest few stay valid, so a retried boot does not break an earlier one. */
const keptTokens = 4;

export type BootDecision =
  | { kind: 'boot'; plan: BootPlan; instance?: string; profile: string; token?: string }
  | { kind: 'local'; instance: string; profile: string; line: string }
  | { kind: 'wait'; lines: string[]; instance?: string; profile?: string; outcome: string };

function wait(
  outcome: string,
  lines: string[],
  extra: { instance?: string; profile?: string } = {},
): BootDecision {
  return { kind: 'wait', lines, outcome, ...extra };
}

/**
 * The record a request matches: every candidate listed under a hardware key the request carries, kept if
 * the request has all its selectors, most specific first. A listing whose selection moved on since (a
 * save that failed half-way, a deleted instance) is skipped. Ties cannot happen: saves refuse them.
 */
export async function matchSelection(
  facts: BootRequestFacts,
  store: BootStore,
): Promise<StoredSelection | undefined> {
  const candidates = (await store.candidates(candidateKeys(facts)))
    .filter((candidate) => selectorsMatch(candidate.selectors, facts))
    .sort((a, b) => compareSpecificity(b.selectors, a.selectors));
  for (const candidate of candidates) {
    const selection = await store.getSelection(candidate.id);
    if (
      selection !== undefined &&
      describeSelectors(selection.selectors) === describeSelectors(candidate.selectors)
    ) {
      return selection;
    }
  }
  return undefined;
}

/** Profile and release resolved to the verified PXE pair, or the reason there is nothing to boot yet. */
async function releasePlan(
  profile: BootProfile,
  deps: BootDeps,
  urls: BootUrls,
): Promise<{ version: string; kernelUrl: string; initramfsUrl: string } | { problem: string }> {
  const version = await resolveProfileVersion(profile, deps.releases, deps.sources);
  const stream = profileStream(deps.sources, profile.channel, profile.board);
  const where = `${profile.channel}/${profile.board}`;
  if (version === undefined) return { problem: `cldist: no ${where} release is mirrored and verified yet` };
  if (profile.version !== 'current') {
    for (const artifact of [pxeKernel, pxeInitramfs]) {
      const record =
        stream === undefined ? undefined : await deps.releases.getArtifact({ ...stream, version, artifact });
      if (record?.state !== 'verified') {
        return { problem: `cldist: ${where} ${version} ${artifact} is not verified in the mirror` };
      }
    }
  }
  const folder = `${urls.mirrorBaseUrl}/${channelFolder(deps.sources, profile.channel)}/${profile.board}/${version}`;
  return { version, kernelUrl: `${folder}/${pxeKernel}`, initramfsUrl: `${folder}/${pxeInitramfs}` };
}

export function bootConfigUrl(apiBaseUrl: string, id: string, token: string): string {
  return `${apiBaseUrl}/v1/boot/instances/${encodeURIComponent(id)}/ignition?token=${token}`;
}

/**
 * Mints a token and stores its hash beside the newest few, conditional on the selection read. Undefined
 * when the selection is gone meanwhile (the instance was deleted): the machine is then unknown.
 */
async function mintToken(
  selection: StoredSelection,
  deps: BootDeps,
  ttlMinutes: number,
): Promise<string | undefined> {
  let current: StoredSelection | undefined = selection;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (current === undefined) return undefined;
    const now = deps.clock();
    const token = newInstanceToken();
    const entry: BootTokenEntry = {
      hash: hashInstanceToken(token),
      expiresAt: new Date(now.getTime() + ttlMinutes * 60_000).toISOString(),
    };
    const live = current.tokens.filter((t) => Date.parse(t.expiresAt) > now.getTime());
    const tokens = [...live.slice(-(keptTokens - 1)), entry];
    if (await deps.store.saveState(current.id, { tokens }, current.rev)) return token;
    current = await deps.store.getSelection(current.id);
  }
  throw new TransientError('boot-token-busy', 'boot tokens of this instance are changing concurrently');
}

export interface DecideOptions {
  urls: BootUrls;
  /** False for a preview: the script names a placeholder instead of a working token. */
  mint: boolean;
}

/** What a machine that sent `facts` boots, or why it waits. Never throws for an unknown machine. */
export async function decideBoot(
  facts: BootRequestFacts,
  deps: BootDeps,
  config: CldistConfig,
  options: DecideOptions,
): Promise<BootDecision> {
  const selection = await matchSelection(facts, deps.store);
  if (selection === undefined) return defaultBoot(facts, deps, config, options);
  const id = selection.id;
  const record = await deps.instances.get(id);
  if (record === undefined || reservationState(record, deps.clock()) === 'lapsed') {
    return wait('no-config', [`cldist: instance ${id} matches this machine but has no config`], {
      instance: id,
    });
  }
  if (record.kind !== 'ignition') {
    return wait('not-ignition', [`cldist: instance ${id} has a cloud-config; network boot needs Ignition`], {
      instance: id,
    });
  }
  const profile = await deps.store.getProfile(selection.profile);
  if (profile === undefined) {
    return wait(
      'no-profile',
      [`cldist: instance ${id} names profile ${selection.profile}, which does not exist`],
      {
        instance: id,
        profile: selection.profile,
      },
    );
  }
  if (profile.install !== undefined && selection.installedAt !== undefined) {
    return {
      kind: 'local',
      instance: id,
      profile: profile.name,
      line: `cldist: instance ${id} was installed to disk at ${selection.installedAt}, booting the next device`,
    };
  }
  const release = await releasePlan(profile, deps, options.urls);
  if ('problem' in release)
    return wait('no-release', [release.problem], { instance: id, profile: profile.name });
  const token = options.mint
    ? await mintToken(selection, deps, config.boot.tokenTtlMinutes)
    : previewTokenPlaceholder;
  if (token === undefined) {
    return wait('no-config', [`cldist: instance ${id} was removed while this machine asked`], {
      instance: id,
    });
  }
  return {
    kind: 'boot',
    instance: id,
    profile: profile.name,
    ...(options.mint ? { token } : {}),
    plan: {
      title: `cldist: ${id}, profile ${profile.name}: Flatcar ${profile.channel} ${release.version} (${profile.board})${profile.install === undefined ? '' : `, installing to ${profile.install.disk}`}`,
      kernelUrl: release.kernelUrl,
      initramfsUrl: release.initramfsUrl,
      initramfsName: pxeInitramfs,
      kernelArgs: [
        ...profile.kernelArgs,
        `ignition.config.url=${bootConfigUrl(options.urls.apiBaseUrl, id, token)}`,
        'ignition.platform.id=metal',
      ],
    },
  };
}

async function defaultBoot(
  facts: BootRequestFacts,
  deps: BootDeps,
  config: CldistConfig,
  options: DecideOptions,
): Promise<BootDecision> {
  const unknown = [
    `cldist: no instance matches this machine (${describeFacts(facts)})`,
    `cldist: register it, e.g. cldist instances put ID --ignition FILE --profile NAME${facts.mac === undefined ? '' : ` --mac ${facts.mac}`}`,
  ];
  const name = config.boot.defaultProfile;
  if (name === undefined) return wait('unknown', unknown);
  const profile = await deps.store.getProfile(name);
  if (profile === undefined) {
    return wait('no-profile', [...unknown, `cldist: the default profile ${name} does not exist`], {
      profile: name,
    });
  }
  const release = await releasePlan(profile, deps, options.urls);
  if ('problem' in release) return wait('no-release', [release.problem], { profile: name });
  return {
    kind: 'boot',
    profile: name,
    plan: {
      title: `cldist: unknown machine, default profile ${name}: Flatcar ${profile.channel} ${release.version} (${profile.board}), no Ignition config`,
      kernelUrl: release.kernelUrl,
      initramfsUrl: release.initramfsUrl,
      initramfsName: pxeInitramfs,
      kernelArgs: [...profile.kernelArgs, 'ignition.platform.id=metal'],
    },
  };
}

/** The script for a decision; GRUB cannot fetch HTTPS, which its script then says. */
export function renderBoot(
  decision: BootDecision,
  loader: BootLoader,
  facts: BootRequestFacts,
  urls: BootUrls,
  retrySeconds: number,
): string {
  const retryUrl = `${urls.apiBaseUrl}/v1/boot/${loader}?${factsQuery(facts)}`;
  if (decision.kind === 'local') {
    return loader === 'ipxe' ? ipxeLocalBootScript(decision.line) : grubLocalBootScript(decision.line);
  }
  if (decision.kind === 'wait') {
    return loader === 'ipxe'
      ? ipxeWaitScript(decision.lines, retryUrl, retrySeconds)
      : grubWaitScript(decision.lines, retryUrl, retrySeconds);
  }
  if (loader === 'ipxe') return ipxeBootScript(decision.plan);
  return (
    grubBootScript(decision.plan) ??
    grubWaitScript(
      ['cldist: GRUB fetches over plain HTTP only; set boot.mirrorBaseUrl to an http:// URL'],
      retryUrl,
      retrySeconds,
    )
  );
}

/** The retry script for a ledger outage: the machine asks again instead of failing its boot. */
export function unavailableDecision(): BootDecision {
  return wait('unavailable', ['cldist: the boot service is temporarily unavailable']);
}
