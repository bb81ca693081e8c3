import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { apiPaths, honoPath } from '../api-routes.ts';
import type { CldistConfig } from '../config.ts';
import type { FleetApiDeps } from '../update/fleet-runtime.ts';
import {
  type FleetMachine,
  fleetIdPattern,
  lastSeen,
  machineStatus,
  machineVersion,
} from '../update/fleet-status.ts';
import { tallyFleet } from '../update/fleet-summary.ts';

export type { FleetApiDeps };

const defaultLimit = 100;
const maxLimit = 1000;

function problem(c: Context, message: string, path: string) {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code: 'bad-request', message, path } }, 400);
}

/** One machine as an admin sees it: ids in full. */
export function fleetRow(machine: FleetMachine) {
  const { check, lastEvent } = machine;
  return {
    machineId: machine.machineId,
    ...(check?.bootId === undefined ? {} : { bootId: check.bootId }),
    group: check?.group ?? '',
    version: machineVersion(machine),
    board: check?.board ?? '',
    ...(check?.oem === undefined ? {} : { oem: check.oem }),
    status: machineStatus(machine),
    lastSeen: lastSeen(machine),
    ...(check === undefined ? {} : { lastCheck: { at: check.at, answer: check.answer } }),
    ...(lastEvent === undefined ? {} : { lastEvent }),
  };
}

/**
 * `GET /v1/fleet[?limit=&after=]`, an admin route: the counts per group, version and status over the
 * machines heard of within `fleet.activeWindowMinutes` (one read of the whole fleet), and one page of
 * machines in id order with their ids in full; `next` is the `after` of the next page.
 */
export function createFleetRoutes(
  deps: FleetApiDeps,
  config: CldistConfig,
  requireAdmin: MiddlewareHandler,
): Hono {
  const app = new Hono();
  app.get(honoPath(apiPaths.fleet), requireAdmin, async (c) => {
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? defaultLimit : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit || !/^\d+$/.test(limitText ?? '1')) {
      return problem(
        c,
        `limit must be a whole number from 1 to ${maxLimit}, not ${JSON.stringify(limitText)}`,
        'limit',
      );
    }
    const after = c.req.query('after');
    if (after !== undefined && !fleetIdPattern.test(after)) {
      return problem(c, 'after must be a machine id, as the previous page\'s "next" gives it', 'after');
    }
    const now = deps.clock();
    const machines: FleetMachine[] = [];
    for await (const machine of deps.ledger.scanFleet()) machines.push(machine);
    const { counts } = tallyFleet(machines, now, config.fleet.activeWindowMinutes * 60_000);
    const page = await deps.ledger.listFleet(limit, after);
    c.header('Cache-Control', 'no-store');
    return c.json({
      generatedAt: now.toISOString(),
      counts,
      instances: page.machines.map(fleetRow),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });
  return app;
}
