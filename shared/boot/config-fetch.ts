import type { SourceConfig } from '../config-sources.ts';
import { contentTypes, type InstanceServiceDeps, readBody } from '../instances/service.ts';
import { instanceTokenMatches } from '../instances/tokens.ts';
import type { InstanceRecord } from '../instances/types.ts';
import { type FetchOutcome, instanceIdPattern, reservationState } from '../instances/types.ts';
import type { ServedConfig } from '../metadata/merge.ts';
import { installerConfig, installPlanFor } from './installer.ts';
import { type ReleaseFacts, resolveProfileVersion } from './profiles.ts';
import { type BootUrls, bootConfigUrl } from './service.ts';
import type { BootStore, BootTokenEntry, StoredSelection } from './store.ts';

export interface BootConfigDeps extends InstanceServiceDeps {
  store: BootStore;
  releases: ReleaseFacts;
  sources: readonly SourceConfig[];
  merge: (record: InstanceRecord, body: Uint8Array) => ServedConfig;
}

export interface BootConfigInput {
  id: string;
  token: string | undefined;
  /** `installed`: the installer fetching the config it writes to disk (no installer config again). */
  stage: string | undefined;
  sourceIp: string;
  userAgent: string;
  consume: boolean;
}

export type BootConfigResult =
  | { status: 'ok'; body: Uint8Array; etag: string; contentType: string }
  | { status: 'not-found'; outcome: FetchOutcome }
  | { status: 'pending' };

const notFound = (outcome: FetchOutcome): BootConfigResult => ({ status: 'not-found', outcome });

/** The token entry `token` matches; every entry is compared, so timing does not say which. */
function findToken(tokens: readonly BootTokenEntry[], token: string): BootTokenEntry | undefined {
  let found: BootTokenEntry | undefined;
  for (const entry of tokens)
    if (instanceTokenMatches(token, entry.hash) && found === undefined) found = entry;
  return found;
}

/**
 * Marks the token used (and the instance installed, for the installer's fetch), conditional on the
 * selection read; a one-time token used by a racing fetch meanwhile is refused. True: this fetch may go on.
 */
async function useToken(
  selection: StoredSelection,
  token: string,
  installed: boolean,
  deps: BootConfigDeps,
): Promise<boolean> {
  let current: StoredSelection | undefined = selection;
  for (let attempt = 0; attempt < 4 && current !== undefined; attempt++) {
    const entry = findToken(current.tokens, token);
    if (entry === undefined || (current.oneTimeToken && entry.usedAt !== undefined)) return false;
    const now = deps.clock().toISOString();
    const tokens = current.tokens.map((t) => (t === entry ? { ...t, usedAt: now } : t));
    const state = { tokens, ...(installed ? { installedAt: now } : {}) };
    if (await deps.store.saveState(current.id, state, current.rev)) return true;
    current = await deps.store.getSelection(current.id);
  }
  return false;
}

/**
 * Serves what a boot token's URL names. For an install-to-disk profile, the first stage is the installer
 * config (which does not use the token up) and `stage=installed` is the instance's own config, which the
 * installer writes to disk. Otherwise the instance's own config, merged with the platform config as every
 * route serves it. Every refusal is the same 404, as on the token route.
 */
export async function fetchBootConfig(
  input: BootConfigInput,
  deps: BootConfigDeps,
  urls: BootUrls,
): Promise<BootConfigResult> {
  if (!instanceIdPattern.test(input.id) || input.token === undefined) return notFound('no-token');
  const [selection, record] = await Promise.all([
    deps.store.getSelection(input.id),
    deps.instances.get(input.id),
  ]);
  if (selection === undefined || record === undefined) return notFound('unknown-instance');
  const entry = findToken(selection.tokens, input.token);
  if (entry === undefined) return notFound('wrong-token');
  const now = deps.clock();
  // The token was shown from here on, so refusals are audited on the instance, as on the token route.
  const audit = (outcome: FetchOutcome) =>
    deps.instances.recordFetch(input.id, {
      at: now.toISOString(),
      route: 'ignition',
      family: 'boot',
      path: `/v1/boot/instances/${input.id}/ignition${input.stage === undefined ? '' : `?stage=${input.stage}`}`,
      sourceIp: input.sourceIp.slice(0, 64),
      userAgent: input.userAgent.slice(0, 256),
      outcome,
    });
  if (Date.parse(entry.expiresAt) <= now.getTime()) {
    audit('expired');
    return notFound('expired');
  }
  if (selection.oneTimeToken && entry.usedAt !== undefined) {
    audit('consumed');
    return notFound('consumed');
  }
  const profile = await deps.store.getProfile(selection.profile);
  if (profile?.install !== undefined && input.stage !== 'installed') {
    const version = await resolveProfileVersion(profile, deps.releases, deps.sources);
    const configUrl = `${bootConfigUrl(urls.apiBaseUrl, input.id, input.token)}&stage=installed`;
    const plan = installPlanFor(profile, version, urls.mirrorBaseUrl, configUrl, deps.sources);
    if (plan === undefined) return notFound('unknown-instance');
    audit('served');
    const body = Buffer.from(JSON.stringify(installerConfig(plan)), 'utf8');
    return {
      status: 'ok',
      body,
      etag: `"installer-${record.etag.replaceAll('"', '')}"`,
      contentType: contentTypes.ignition,
    };
  }
  const reservation = reservationState(record, now);
  if (reservation === 'pending') {
    audit('pending');
    return { status: 'pending' };
  }
  if (reservation === 'lapsed') return notFound('reservation-lapsed');
  if (record.kind !== 'ignition') return notFound('wrong-kind');
  if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now.getTime())
    return notFound('expired');
  if (record.consumedAt !== undefined) return notFound('consumed');
  const body = await readBody(record, deps);
  if (input.consume) {
    if (!(await useToken(selection, input.token, input.stage === 'installed', deps))) {
      audit('consumed');
      return notFound('consumed');
    }
    if (record.oneTime && !(await deps.instances.consume(input.id, record.tokenHash, now))) {
      audit('consumed');
      return notFound('consumed');
    }
  }
  audit('served');
  const served = deps.merge(record, body);
  return { status: 'ok', body: served.body, etag: served.etag, contentType: contentTypes.ignition };
}
