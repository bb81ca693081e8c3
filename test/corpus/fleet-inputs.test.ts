import fc from 'fast-check';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { FleetLedger } from '../../shared/ledger/fleet.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import type { FleetCheckIn } from '../../shared/update/fleet-record.ts';
import { createFleetRecorder } from '../../shared/update/fleet-recorder.ts';
import { fleetLedgerFor } from '../../shared/update/fleet-runtime.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';

const clients = emulatorClients();
const config = parseConfig({});
const adminToken = 'corpus-fleet-admin-token-0123456789';
let ledger: FleetLedger;
let app: Hono;
const internalErrors: unknown[] = [];

beforeAll(async () => {
  const table = await freshTable(clients, 'corpus-fleet');
  await tableActive(table);
  ledger = fleetLedgerFor(clients.doc, table, config);
  app = createApiApp(
    {
      instances: createDynamoInstanceRepository(clients.doc, { table }),
      bodies: createLocalStore('/nonexistent-corpus-fleet'),
      clock: () => new Date('2026-12-03T09:00:00Z'),
      adminAuth: { kind: 'bearer', token: adminToken },
      onInternalError: (error) => internalErrors.push(error),
      fleet: { recorder: { record: () => {} }, ledger, clock: () => new Date('2026-12-03T09:00:00Z') },
    },
    config,
  );
});

afterAll(() => reportTallies('fleet-inputs'));

/** Strings update_engine never sends: empty, huge, control characters, `#`, unicode, numbers as text. */
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '#', 'a#b', '{}', '../..', '\u0000', 'NaN', '-1', ' '.repeat(3)),
  fc.string({ minLength: 120, maxLength: 600 }),
);
const oddNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 60),
);

describe('bad input to the fleet (fast-check)', () => {
  it('answers any limit and after with 200 or a 400 naming the parameter, never a 500', async () => {
    const query = fc.record(
      { limit: fc.oneof(oddString, fc.integer({ min: -5, max: 2000 }).map(String)), after: oddString },
      { requiredKeys: [] },
    );
    await runCorpus('GET /v1/fleet query', query, async (q) => {
      const params = new URLSearchParams(q as Record<string, string>);
      const answer = await within(
        10_000,
        `GET /v1/fleet?${params}`,
        Promise.resolve(
          app.request(`/v1/fleet?${params}`, { headers: { Authorization: `Bearer ${adminToken}` } }),
        ),
      );
      expect([200, 400], `?${params}`).toContain(answer.status);
      if (answer.status === 400) {
        const { error } = (await answer.json()) as { error: { path: string } };
        expect(['limit', 'after']).toContain(error.path);
      }
    });
    expect(internalErrors).toEqual([]);
  });

  it('records any check-in the endpoint may hand over without throwing, and every flush is accepted', async () => {
    const errors: unknown[] = [];
    const recorder = createFleetRecorder({
      ledger,
      flushIntervalMs: 60_000,
      flushAtMachines: 1_000_000,
      maxMachines: 100_000,
      maxBytes: 64 * 1024 * 1024,
      unchangedRefreshMs: 600_000,
      onError: (error) => errors.push(error),
    });
    const checkIn = fc.record({
      machineId: fc.oneof(oddString, fc.stringMatching(/^[0-9a-f]{32}$/)),
      bootId: fc.option(oddString, { nil: undefined }),
      appId: oddString,
      group: oddString,
      version: oddString,
      board: oddString,
      oem: fc.option(oddString, { nil: undefined }),
      at: fc.oneof(fc.constant('2026-12-03T09:00:00.000Z'), oddString),
      events: fc.array(
        fc.record({
          type: oddNumber,
          result: oddNumber,
          errorCode: fc.option(oddNumber, { nil: undefined }),
        }),
        {
          maxLength: 3,
        },
      ),
      answer: fc.oneof(
        fc.record({ kind: fc.constant('update' as const), version: oddString }),
        fc.constant({ kind: 'noupdate' as const }),
        fc.constant({ kind: 'event-ack' as const }),
        fc.record({ kind: fc.constant('error' as const), status: oddString }),
      ),
    });
    await runCorpus('fleet recorder check-in', checkIn, (value) => {
      expect(() => recorder.record(value as FleetCheckIn)).not.toThrow();
    });
    await recorder.flush();
    expect(errors).toEqual([]);
    expect(recorder.stats().pending).toBe(0);
  });
});
