import { LRUCache } from 'lru-cache';
import { compareVersions } from '../release/version-file.ts';
import type { UpdateSources } from './cached-sources.ts';
import type { FleetCheckIn, FleetRecorder, OmahaAnswer } from './fleet-record.ts';
import type { UpdateGroup } from './groups.ts';
import {
  type OmahaAppRequest,
  OmahaRequestError,
  parseOmahaRequest,
  type UnknownOmahaApp,
} from './omaha-request.ts';
import {
  buildOmahaRefusal,
  buildOmahaResponse,
  type OmahaAppAnswer,
  type OmahaPackage,
  type OmahaUpdateCheck,
} from './omaha-response.ts';
import { MAIN_UPDATE_PAYLOAD, type UpdatePayloadRecord, updatePayloadKey } from './payload-record.ts';
import { admittedByShare, machinePosition, periodStart, rolloutShare, windowOpen } from './rollout.ts';

/**
 * The Omaha endpoint's core: one request body in, one answer out. It decides, per instance, whether the
 * group's target is offered now (group, pause, window, version, verified payload, rollout), names only
 * verified payloads, and hands every check-in to the fleet recorder without waiting for it.
 */

export interface OmahaServiceDeps {
  sources: UpdateSources;
  /** The per-period cap's shared counter (the ledger). */
  admitInPeriod(
    group: string,
    periodStart: string,
    machineId: string,
    max: number,
    expiresAt: Date,
  ): Promise<boolean>;
  recorder?: FleetRecorder;
  clock: () => Date;
  /** Told when the recorder throws, which it must not; the answer is sent regardless. */
  onRecordError?: (error: unknown) => void;
}

export interface OmahaServiceConfig {
  /** Where the mirror is public; payloads are under `<base>/update/<board>/<version>/`. */
  mirrorBaseUrl: string;
  /** Channel names: a `track` equal to one with no group configured follows that channel. */
  channels: readonly string[];
}

export interface OmahaResult {
  /** 200 for every Omaha answer (errors are statuses inside it); 400 for a body that is not one. */
  status: 200 | 400;
  body: string;
}

/** For each channel, the group a track of its name gets without one of its own: follow it, all at once. */
function defaultGroups(channels: readonly string[]): ReadonlyMap<string, UpdateGroup> {
  const since = new Date(0).toISOString();
  return new Map(
    channels.map((channel) => [
      channel,
      { name: channel, channel, paused: false, rollout: { kind: 'all' }, updatedAt: since },
    ]),
  );
}

/** The numeric head of an instance's version (`3510.2.0+dev` compares as `3510.2.0`). */
function numericVersion(version: string): string {
  return /^[0-9]+(\.[0-9]+)*/.exec(version)?.[0] ?? '0';
}

interface Target {
  version: string;
  /** When this version became the group's target: a percentage rollout grows from here. */
  since: Date;
}

async function targetOf(
  group: UpdateGroup,
  board: string,
  sources: UpdateSources,
): Promise<Target | undefined> {
  if (group.version !== undefined) {
    return { version: group.version, since: new Date(group.pinnedAt ?? group.updatedAt) };
  }
  const current = await sources.getCurrent(group.channel, board);
  return current === undefined ? undefined : { version: current.version, since: new Date(current.updatedAt) };
}

const noUpdate: OmahaUpdateCheck = { status: 'noupdate' };

/** Machines this process already admitted in a period, so their next checks cost no ledger write. */
const admittedCacheSize = 50_000;

/** One service's state, shared by the steps of an answer. */
interface ServiceContext {
  deps: OmahaServiceDeps;
  defaults: ReadonlyMap<string, UpdateGroup>;
  mirrorBase: string;
  admitted: LRUCache<string, true>;
}

/** Whether the group's rollout admits this machine to the target now. */
async function admit(
  ctx: ServiceContext,
  group: UpdateGroup,
  target: Target,
  machineId: string,
  now: Date,
): Promise<boolean> {
  const { rollout } = group;
  if (rollout.kind === 'all') return true;
  if (rollout.kind === 'percent') {
    const share = rolloutShare(rollout, target.since, now);
    return admittedByShare(share, machinePosition(group.name, target.version, machineId));
  }
  const start = periodStart(rollout.periodMinutes, now);
  const key = `${group.name}\n${start}\n${machineId}`;
  if (ctx.admitted.has(key)) return true;
  const end = new Date(start).getTime() + rollout.periodMinutes * 60_000;
  const expires = new Date(end + 86_400_000);
  const ok = await ctx.deps.admitInPeriod(group.name, start, machineId, rollout.maxUpdates, expires);
  if (ok) ctx.admitted.set(key, true, { ttl: Math.max(1, end - now.getTime()) });
  return ok;
}

/** The update answer for verified payloads: the main package, and the OEM package the instance runs. */
function offer(
  ctx: ServiceContext,
  app: OmahaAppRequest,
  version: string,
  payloads: readonly UpdatePayloadRecord[],
  main: UpdatePayloadRecord,
): OmahaUpdateCheck {
  const packages: OmahaPackage[] = [
    { name: main.name, size: main.size, sha1Base64: main.sha1Base64, required: true },
  ];
  const oem = app.oem === undefined ? undefined : payloads.find((p) => p.name === `oem-${app.oem}.gz`);
  if (oem !== undefined) {
    const { name, size, sha1Base64, sha256Hex } = oem;
    packages.push({ name, size, sha1Base64, sha256Hex, required: false });
  }
  return {
    status: 'ok',
    codebase: `${ctx.mirrorBase}/${updatePayloadKey(app.board, version, '')}`,
    version,
    packages,
    postinstallSha256Base64: Buffer.from(main.sha256Hex, 'hex').toString('base64'),
  };
}

/** Paused, window, target, version, verified payload, rollout: the first that says no gives noupdate. */
async function updateCheck(
  ctx: ServiceContext,
  app: OmahaAppRequest,
  group: UpdateGroup,
  now: Date,
): Promise<OmahaUpdateCheck> {
  if (group.paused || !windowOpen(group.window, now)) return noUpdate;
  const target = await targetOf(group, app.board, ctx.deps.sources);
  if (target === undefined) return noUpdate;
  if (compareVersions(numericVersion(app.version), target.version) >= 0) return noUpdate;
  const payloads = await ctx.deps.sources.payloadsFor(app.board, target.version);
  const main = payloads.find((p) => p.name === MAIN_UPDATE_PAYLOAD);
  if (main === undefined) return noUpdate;
  if (!(await admit(ctx, group, target, app.machineId, now))) return noUpdate;
  return offer(ctx, app, target.version, payloads, main);
}

/** Hands the check-in to the recorder; a recorder that throws is reported, never allowed to fail the answer. */
function record(ctx: ServiceContext, app: OmahaAppRequest, answer: OmahaAnswer, now: Date): void {
  const { recorder, onRecordError } = ctx.deps;
  if (recorder === undefined) return;
  const checkIn: FleetCheckIn = {
    machineId: app.machineId,
    ...(app.bootId === undefined ? {} : { bootId: app.bootId }),
    appId: app.appId,
    group: app.track,
    version: app.version,
    board: app.board,
    ...(app.oem === undefined ? {} : { oem: app.oem }),
    at: now.toISOString(),
    events: app.events,
    answer,
  };
  try {
    recorder.record(checkIn);
  } catch (error) {
    onRecordError?.(error);
  }
}

function refusedApp(appId: string, status: string, updateCheck: boolean): OmahaAppAnswer {
  return {
    appId,
    status,
    ping: false,
    events: 0,
    ...(updateCheck ? { updateCheck: { status: 'error-internal' } } : {}),
  };
}

async function answerApp(
  ctx: ServiceContext,
  app: OmahaAppRequest | UnknownOmahaApp,
  now: Date,
): Promise<OmahaAppAnswer> {
  if (!app.known) return refusedApp(app.appIdAsSent, 'error-unknownApplication', app.updateCheck);
  const group = (await ctx.deps.sources.getGroup(app.track)) ?? ctx.defaults.get(app.track);
  if (group === undefined) {
    const status = 'error-unknownApplicationOrGroup';
    record(ctx, app, { kind: 'error', status }, now);
    return refusedApp(app.appIdAsSent, status, app.updateCheck);
  }
  const check = app.updateCheck ? await updateCheck(ctx, app, group, now) : undefined;
  const answer: OmahaAnswer =
    check?.status === 'ok'
      ? { kind: 'update', version: check.version }
      : check === undefined && app.events.length > 0
        ? { kind: 'event-ack' }
        : { kind: 'noupdate' };
  record(ctx, app, answer, now);
  return {
    appId: app.appIdAsSent,
    status: 'ok',
    ping: app.ping,
    events: app.events.length,
    ...(check === undefined ? {} : { updateCheck: check }),
  };
}

export function createOmahaService(deps: OmahaServiceDeps, config: OmahaServiceConfig) {
  const ctx: ServiceContext = {
    deps,
    defaults: defaultGroups(config.channels),
    mirrorBase: config.mirrorBaseUrl.replace(/\/+$/, ''),
    admitted: new LRUCache<string, true>({ max: admittedCacheSize }),
  };
  return {
    /** Answers one request body; ledger outages surface as `TransientError`s for the route to map. */
    async answer(body: string): Promise<OmahaResult> {
      const now = deps.clock();
      let request: ReturnType<typeof parseOmahaRequest>;
      try {
        request = parseOmahaRequest(body);
      } catch (error) {
        if (!(error instanceof OmahaRequestError)) throw error;
        return { status: 400, body: buildOmahaRefusal(error.code, error.message) };
      }
      const apps = await Promise.all(request.apps.map((app) => answerApp(ctx, app, now)));
      return { status: 200, body: buildOmahaResponse(apps, now) };
    },
    /** Forgets a cached group at once after an admin write through this process. */
    forgetGroup: (name: string) => deps.sources.forgetGroup(name),
  };
}

export type OmahaService = ReturnType<typeof createOmahaService>;
