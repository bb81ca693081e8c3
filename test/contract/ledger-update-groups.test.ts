import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { ledgerTable } from '../../shared/ledger/access.ts';
import { ledgerItems } from '../../shared/ledger/table.ts';
import { type UpdateGroupLedger, updateGroupLedger } from '../../shared/ledger/update-groups.ts';
import { parseGroupInput, type UpdateGroup } from '../../shared/update/groups.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { memoryGroups } from '../support/update-fixtures.ts';

const clients = emulatorClients();
const updatedAt = '2026-12-01T00:00:00.000Z';

function group(name: string, input: Record<string, unknown> = {}): UpdateGroup {
  return { ...parseGroupInput({ channel: 'stable', ...input }), name, updatedAt };
}

/** The same contract, on dynalite and on the in-memory stand-in the endpoint's unit tests use. */
describe.each([
  ['dynalite', 'dynamo'],
  ['memory', 'memory'],
])('the update group part of the ledger (%s)', (_label, kind) => {
  let ledger: UpdateGroupLedger;

  beforeEach(async () => {
    if (kind === 'memory') {
      ledger = memoryGroups();
      return;
    }
    const table = await freshTable(clients);
    await tableActive(table);
    ledger = updateGroupLedger(ledgerTable(clients.doc, table, () => new Date(updatedAt)));
  });

  it('creates, replaces, lists by name and deletes groups, nested settings intact', async () => {
    const canary = group('canary', {
      rollout: { kind: 'percent', percent: 50, overMinutes: 120 },
      window: { start: '22:00', end: '04:00', days: ['sat', 'sun'] },
    });
    expect(await ledger.putGroup(canary)).toBe(true);
    expect(await ledger.putGroup(group('beta-fleet', { channel: 'beta', version: '4186.1.0' }))).toBe(true);
    expect(await ledger.getGroup('canary')).toEqual(canary);
    const paused = { ...canary, paused: true };
    expect(await ledger.putGroup(paused)).toBe(false);
    expect(await ledger.getGroup('canary')).toEqual(paused);
    expect((await ledger.listGroups()).map((g) => g.name)).toEqual(['beta-fleet', 'canary']);
    expect(await ledger.deleteGroup('canary')).toBe(true);
    expect(await ledger.deleteGroup('canary')).toBe(false);
    expect(await ledger.getGroup('canary')).toBeUndefined();
    expect((await ledger.listGroups()).map((g) => g.name)).toEqual(['beta-fleet']);
  });

  it('admits at most N distinct machines per period, even when they all ask at once', async () => {
    const start = '2026-12-01T10:00:00.000Z';
    const expires = new Date('2026-12-02T11:00:00Z');
    const ids = Array.from({ length: 40 }, (_, i) => `machine-${i}`);
    const answers = await Promise.all(
      ids.map((id) => ledger.admitInPeriod('canary', start, id, 10, expires)),
    );
    const admitted = ids.filter((_, i) => answers[i]);
    expect(admitted).toHaveLength(10);
    // An admitted machine stays admitted; another is still refused; the next period starts afresh.
    for (const id of admitted)
      expect(await ledger.admitInPeriod('canary', start, id, 10, expires)).toBe(true);
    const refused = ids.find((id) => !admitted.includes(id)) ?? '';
    expect(await ledger.admitInPeriod('canary', start, refused, 10, expires)).toBe(false);
    expect(await ledger.admitInPeriod('canary', '2026-12-01T11:00:00.000Z', refused, 10, expires)).toBe(true);
    expect(await ledger.admitInPeriod('other', start, refused, 10, expires)).toBe(true);
  });
});

/** What only the table holds: the per-period items, which nothing but this part removes on one machine. */
describe('the update group part of the ledger: period items (dynalite)', () => {
  let ledger: UpdateGroupLedger;
  let table = '';

  beforeEach(async () => {
    table = await freshTable(clients);
    await tableActive(table);
    ledger = updateGroupLedger(ledgerTable(clients.doc, table, () => new Date(updatedAt)));
  });

  it('removes a group’s earlier periods at a new period’s first admission, and all on delete', async () => {
    const expires = new Date('2026-12-09T00:00:00Z');
    const periods = ['2026-12-01T10:00:00.000Z', '2026-12-01T11:00:00.000Z', '2026-12-01T12:00:00.000Z'];
    const stored = async (group: string, start: string) =>
      (
        await clients.doc.send(
          new GetCommand({ TableName: table, Key: ledgerItems.updatePeriod(group, start) }),
        )
      ).Item;
    await ledger.putGroup(group('canary'));
    await ledger.admitInPeriod('canary', periods[0] ?? '', 'a', 5, expires);
    await ledger.admitInPeriod('canary', periods[1] ?? '', 'a', 5, expires);
    await ledger.admitInPeriod('canary', periods[1] ?? '', 'b', 5, expires);
    await ledger.admitInPeriod('canary-2', periods[0] ?? '', 'a', 5, expires);
    expect(await stored('canary', periods[0] ?? '')).toBeUndefined();
    expect((await stored('canary', periods[1] ?? ''))?.machines).toEqual(new Set(['a', 'b']));
    expect(await stored('canary-2', periods[0] ?? '')).toBeDefined();
    await ledger.admitInPeriod('canary', periods[2] ?? '', 'c', 5, expires);
    expect(await stored('canary', periods[1] ?? '')).toBeUndefined();
    expect(await ledger.deleteGroup('canary')).toBe(true);
    expect(await stored('canary', periods[2] ?? '')).toBeUndefined();
    expect(await stored('canary-2', periods[0] ?? '')).toBeDefined();
  });
});
