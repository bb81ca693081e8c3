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
import { MAIN_UPDATE_PAYLOAD, updatePayloadKey } from './payload-record.ts';
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

/** A group for a track that names a channel and has no group of its own: follow it, everyone at once. */
function defaultGroup(track: string, channels: readonly string[]): UpdateGroup | undefined {
  if (!channels.includes(track)) return undefined;
  return {
    name: track,
    channel: track,
    paused: false,
    rollout: { kind: 'all' },
    updatedAt: new Date(0).toISOString(),
  };
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

export function createOmahaService(deps: OmahaServiceDeps, config: OmahaServiceConfig) {
  const admitted = new LRUCache<string, true>({ max: admittedCacheSize });
  const mirrorBase = config.mirrorBaseUrl.replace(/\/+$/, '');

  async function admit(group: UpdateGroup, target: Target, machineId: string, now: Date): Promise<boolean> {
    const { rollout } = group;
    if (rollout.kind === 'all') return true;
    if (rollout.kind === 'percent') {
      const share = rolloutShare(rollout, target.since, now);
      return admittedByShare(share, machinePosition(group.name, target.version, machineId));
    }
    const start = periodStart(rollout.periodMinutes, now);
    const key = `${group.name}\n${start}\n${machineId}`;
    if (admitted.has(key)) return true;
    const end = new Date(new Date(start).getTime() + rollout.periodMinutes * 60_000);
    const ok = await deps.admitInPeriod(
      group.name,
      start,
      machineId,
      rollout.maxUpdates,
      new Date(end.getTime() + 86_400_000),
    );
    if (ok) admitted.set(key, true, { ttl: end.getTime() - now.getTime() });
    return ok;
  }

  async function updateCheck(app: OmahaAppRequest, group: UpdateGroup, now: Date): Promise<OmahaUpdateCheck> {
    if (group.paused || !windowOpen(group.window, now)) return noUpdate;
    const target = await targetOf(group, app.board, deps.sources);
    if (target === undefined) return noUpdate;
    if (compareVersions(numericVersion(app.version), target.version) >= 0) return noUpdate;
    const payloads = await deps.sources.payloadsFor(app.board, target.version);
    const main = payloads.find((p) => p.name === MAIN_UPDATE_PAYLOAD);
    if (main === undefined) return noUpdate;
    if (!(await admit(group, target, app.machineId, now))) return noUpdate;
    const packages: OmahaPackage[] = [
      { name: main.name, size: main.size, sha1Base64: main.sha1Base64, required: true },
    ];
    const oem = app.oem === undefined ? undefined : payloads.find((p) => p.name === `oem-${app.oem}.gz`);
    if (oem !== undefined) {
      packages.push({
        name: oem.name,
        size: oem.size,
        sha1Base64: oem.sha1Base64,
        sha256Hex: oem.sha256Hex,
        required: false,
      });
    }
    return {
      status: 'ok',
      codebase: `${mirrorBase}/${updatePayloadKey(app.board, target.version, '')}`,
      version: target.version,
      packages,
      postinstallSha256Base64: Buffer.from(main.sha256Hex, 'hex').toString('base64'),
    };
  }

  function record(app: OmahaAppRequest, answer: OmahaAnswer, now: Date): void {
    if (deps.recorder === undefined) return;
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
      deps.recorder.record(checkIn);
    } catch (error) {
      deps.onRecordError?.(error);
    }
  }

  async function answerApp(app: OmahaAppRequest | UnknownOmahaApp, now: Date): Promise<OmahaAppAnswer> {
    if (!app.known) {
      return {
        appId: app.appIdAsSent,
        status: 'error-unknownApplication',
        ping: false,
        events: 0,
        ...(app.updateCheck ? { updateCheck: { status: 'error-internal' } } : {}),
      };
    }
    const group = (await deps.sources.getGroup(app.track)) ?? defaultGroup(app.track, config.channels);
    if (group === undefined) {
      const status = 'error-unknownApplicationOrGroup';
      record(app, { kind: 'error', status }, now);
      return {
        appId: app.appIdAsSent,
        status,
        ping: false,
        events: 0,
        ...(app.updateCheck ? { updateCheck: { status: 'error-internal' } } : {}),
      };
    }
    const check = app.updateCheck ? await updateCheck(app, group, now) : undefined;
    const answer: OmahaAnswer =
      check?.status === 'ok'
        ? { kind: 'update', version: check.version }
        : check === undefined && app.events.length > 0
          ? { kind: 'event-ack' }
          : { kind: 'noupdate' };
    record(app, answer, now);
    return {
      appId: app.appIdAsSent,
      status: 'ok',
      ping: app.ping,
      events: app.events.length,
      ...(check === undefined ? {} : { updateCheck: check }),
    };
  }

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
      const apps = await Promise.all(request.apps.map((app) => answerApp(app, now)));
      return { status: 200, body: buildOmahaResponse(apps, now) };
    },
    /** Forgets a cached group at once after an admin write through this process. */
    forgetGroup: (name: string) => deps.sources.forgetGroup(name),
  };
}

export type OmahaService = ReturnType<typeof createOmahaService>;
