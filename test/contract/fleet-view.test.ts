import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { fleetStatusView } from '../../local/status/fleet.ts';
import { renderStatusPage } from '../../local/status/render.ts';
import { type AdminAuth, createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { eventSchemas } from '../../shared/events.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { FleetLedger } from '../../shared/ledger/fleet.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { silentLogger } from '../../shared/mirror/deps.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { runFleetPass } from '../../shared/update/fleet-pass.ts';
import { createFleetRecording, fleetLedgerFor } from '../../shared/update/fleet-runtime.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { fleetCheckIn, machineId, recordRollout } from '../support/fleet-fixtures.ts';
import { emptyStatusModel } from '../support/status-model.ts';

const clients = emulatorClients();
const config = parseConfig({});
const adminToken = 'f'.repeat(43);
const bodiesDir = mkdtempSync(join(tmpdir(), 'cldist-fleet-view-'));
afterAll(() => rmSync(bodiesDir, { recursive: true, force: true }));

describe('the fleet view: counts, paging, redaction and notices (dynalite)', () => {
  let table: string;
  let ledger: FleetLedger;
  let now: Date;
  const clock = () => now;

  function recording() {
    return createFleetRecording(ledger, config, {
      clock,
      onError: (error) => {
        throw error;
      },
    });
  }

  function app(adminAuth: AdminAuth = { kind: 'bearer', token: adminToken }) {
    return createApiApp(
      {
        instances: createDynamoInstanceRepository(clients.doc, { table }),
        bodies: createLocalStore(bodiesDir),
        clock,
        adminAuth,
        fleet: recording().api,
      },
      config,
    );
  }

  const get = (path: string, token: string | null = adminToken) =>
    app().request(path, token === null ? {} : { headers: { Authorization: `Bearer ${token}` } });

  beforeEach(async () => {
    table = await freshTable(clients);
    await tableActive(table);
    now = new Date('2026-12-03T08:30:00Z');
    ledger = fleetLedgerFor(clients.doc, table, config, clock);
  });

  it('answers GET /v1/fleet to admins only: 401 without or with a wrong token, 403 without an IAM caller', async () => {
    const none = await get('/v1/fleet', null);
    expect(none.status).toBe(401);
    expect(none.headers.get('WWW-Authenticate')).toMatch(/^Bearer/);
    expect((await get('/v1/fleet', 'x'.repeat(43))).status).toBe(401);
    const iam = await app({ kind: 'iam' }).request('/v1/fleet');
    expect(iam.status).toBe(403);
    expect(((await iam.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const authorized = {
      requestContext: { authorizer: { iam: { userArn: 'arn:aws:iam::123456789012:user/op' } } },
    };
    expect((await app({ kind: 'iam' }).request('/v1/fleet', {}, authorized)).status).toBe(200);
    expect((await get('/v1/fleet')).status).toBe(200);
  });

  it('counts per group, version and status, and pages the machines with their ids in full', async () => {
    const { recorder } = recording();
    recordRollout(recorder, '2026-12-03T08:00:00.000Z');
    // Inactive: last heard of four hours ago, beyond the three-hour window; listed, not counted.
    recorder.record(fleetCheckIn(machineId(9, 'z'), { at: '2026-12-03T04:29:00.000Z' }));
    await recorder.close();
    const first = await get('/v1/fleet?limit=3');
    expect(first.status).toBe(200);
    const body = (await first.json()) as {
      counts: Record<string, unknown>;
      instances: { machineId: string; bootId?: string; status: string }[];
      next?: string;
    };
    expect(body.counts).toEqual({
      total: 8,
      active: 7,
      inactive: 1,
      byGroup: { stable: 5, beta: 2 },
      byVersion: { '20.0.0': 5, '20.1.0': 2 },
      byStatus: { complete: 2, error: 2, 'download-started': 1, 'update-offered': 2 },
    });
    expect(body.instances.map((i) => [i.machineId, i.status])).toEqual([
      [machineId(0, 'b'), 'complete'],
      [machineId(1, 'b'), 'complete'],
      [machineId(0, 's'), 'error'],
    ]);
    expect(body.instances[0]?.bootId).toMatch(/^\{b0000000-0000-4000-8000-[0-9a-f]{12}\}$/);
    const ids: string[] = body.instances.map((i) => i.machineId);
    let next = body.next;
    for (let page = 0; next !== undefined && page < 5; page++) {
      const more = (await (await get(`/v1/fleet?limit=3&after=${next}`)).json()) as typeof body;
      ids.push(...more.instances.map((i) => i.machineId));
      next = more.next;
    }
    expect(next).toBeUndefined();
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
  });

  it('refuses a bad limit or cursor with the parameter named', async () => {
    for (const query of ['limit=0', 'limit=1001', 'limit=ten', 'limit=2.5', 'after=a%23b']) {
      const answer = await get(`/v1/fleet?${query}`);
      expect(answer.status, query).toBe(400);
      const { error } = (await answer.json()) as { error: { path: string; message: string } };
      expect(error.path).toBe(query.split('=')[0]);
    }
  });

  it('shows the status page only short ids: no machine or boot id in full', async () => {
    const { recorder } = recording();
    recordRollout(recorder, '2026-12-03T08:00:00.000Z');
    await recorder.close();
    const pass = await runFleetPass(
      { ledger, notifier: { publish: async () => {} }, clock, logger: silentLogger },
      config,
    );
    now = new Date('2026-12-03T08:35:00Z');
    await runFleetPass(
      { ledger, notifier: { publish: async () => {} }, clock, logger: silentLogger },
      config,
    );
    const view = await fleetStatusView(ledger, pass, now, 50);
    const model = emptyStatusModel({
      generatedAt: now.toISOString(),
      worker: { inFlight: 0, concurrency: 1 },
      mirrorBaseUrl: 'http://127.0.0.1/mirror',
      fleet: view,
    });
    const page = String(await renderStatusPage(model, 5));
    const json = JSON.stringify(model);
    const fullIds = [...view.rows.keys()].flatMap((i) => {
      const id = i < 2 ? machineId(i, 'b') : machineId(i - 2, 's');
      return [id, id.slice(0, 8)];
    });
    expect(view.rows.map((r) => r.machine)).toContain(`${machineId(0, 's').slice(0, 6)}…`);
    for (const id of fullIds) {
      expect(page).not.toContain(id);
      expect(json).not.toContain(id);
    }
    expect(page).not.toMatch(/-4000-8000-/);
    // The plot: one band per version, from the two snapshots.
    expect(view.snapshots).toHaveLength(2);
    expect(page).toContain('data-version="20.0.0"');
    expect(page).toContain('data-version="20.1.0"');
    expect(page).toContain('7 active instances, 0 inactive');
  });

  it('sends update.rolled_out and update.failed_rate once each, with schema-valid bodies', async () => {
    const { recorder } = recording();
    recordRollout(recorder, '2026-12-03T08:00:00.000Z');
    await recorder.close();
    const sent: CldistEvent[] = [];
    const deps = {
      ledger,
      notifier: { publish: async (e: CldistEvent) => void sent.push(e) },
      clock,
      logger: silentLogger,
    };
    const first = await runFleetPass(deps, config);
    now = new Date('2026-12-03T08:40:00Z');
    const second = await runFleetPass(deps, config);
    expect(second.sent).toEqual([]);
    expect(first.sent).toHaveLength(2);
    expect(sent.map((e) => [e.event, e.channel, e.board, e.version]).sort()).toEqual([
      ['update.failed_rate', 'stable', 'amd64-usr', '20.1.0'],
      ['update.rolled_out', 'beta', 'amd64-usr', '20.1.0'],
    ]);
    for (const event of sent) {
      const schema = eventSchemas[event.event];
      expect(schema.safeParse(event).error?.issues, JSON.stringify(event)).toBeUndefined();
    }
    const failed = sent.find((e) => e.event === 'update.failed_rate');
    expect(failed?.detail).toEqual({
      group: 'stable',
      updating: 5,
      failed: 2,
      rate: 0.4,
      threshold: 0.2,
      errorCodes: { '20': 2 },
    });
    expect(sent.find((e) => e.event === 'update.rolled_out')?.detail).toEqual({
      group: 'beta',
      instances: 2,
      updated: 2,
    });
  });

  it('sends a notice whose publish failed on a later pass, once the claim ran out', async () => {
    const { recorder } = recording();
    recordRollout(recorder, '2026-12-03T08:00:00.000Z');
    await recorder.close();
    let down = true;
    const sent: string[] = [];
    const notifier = {
      publish: async (e: CldistEvent) => {
        if (down) throw new Error('topic unreachable');
        sent.push(e.event);
      },
    };
    const deps = { ledger, notifier, clock, logger: silentLogger };
    expect((await runFleetPass(deps, config)).sent).toEqual([]);
    down = false;
    expect((await runFleetPass(deps, config)).sent).toEqual([]);
    now = new Date(now.getTime() + 121_000);
    await runFleetPass(deps, config);
    expect(sent.sort()).toEqual(['update.failed_rate', 'update.rolled_out']);
  });

  it('raises no failed rate below minInstances, nor at the threshold itself', async () => {
    const { recorder } = recording();
    for (let i = 0; i < 4; i++) {
      const id = machineId(i, 'c');
      recorder.record(fleetCheckIn(id, { answer: { kind: 'update', version: '20.1.0' } }));
      if (i < 2) {
        recorder.record(
          fleetCheckIn(id, {
            at: '2026-12-03T08:01:00.000Z',
            events: [{ type: 3, result: 0, errorCode: 20 }],
            answer: { kind: 'event-ack' },
          }),
        );
      }
    }
    await recorder.close();
    const sent: CldistEvent[] = [];
    const notifier = { publish: async (e: CldistEvent) => void sent.push(e) };
    await runFleetPass({ ledger, notifier, clock, logger: silentLogger }, config);
    expect(sent).toEqual([]);
    const atThreshold = parseConfig({ fleet: { failedRate: { threshold: 0.5, minInstances: 4 } } });
    await runFleetPass({ ledger, notifier, clock, logger: silentLogger }, atThreshold);
    expect(sent).toEqual([]);
    const below = parseConfig({ fleet: { failedRate: { threshold: 0.49, minInstances: 4 } } });
    await runFleetPass({ ledger, notifier, clock, logger: silentLogger }, below);
    expect(sent.map((e) => e.event)).toEqual(['update.failed_rate']);
  });
});
