import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type BootStore,
  createDynamoBootStore,
  SelectorTieError,
  selectionClaimMs,
} from '../../shared/boot/store.ts';
import { ledgerItems } from '../../shared/ledger/table.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const now = '2026-12-03T00:00:00.000Z';
const selection = (id: string, mac: string, labels: Record<string, string> = {}) => ({
  id,
  selectors: { mac, labels },
  profile: 'ram',
  oneTimeToken: false,
  updatedAt: now,
});

/** The boot part of the ledger on dynalite: profiles, selections, their groups, and token writes. */
describe('boot store (ledger on dynalite)', () => {
  let store: BootStore;
  let table: string;
  let clock = new Date(now);
  const clients = emulatorClients();
  const advancePastClaims = () => {
    clock = new Date(clock.getTime() + selectionClaimMs + 1);
  };

  beforeAll(async () => {
    table = await freshTable(clients);
    await tableActive(table);
    store = createDynamoBootStore(clients.doc, table, () => clock);
  });

  it('keeps profiles under their own keys and lists them by name', async () => {
    for (const name of ['b', 'a']) {
      await store.putProfile({
        name,
        channel: 'stable',
        board: 'amd64-usr',
        version: 'current',
        kernelArgs: ['flatcar.autologin'],
        ...(name === 'b' ? { install: { disk: '/dev/sda' } } : {}),
        createdAt: now,
        updatedAt: now,
      });
    }
    expect((await store.listProfiles()).map((p) => p.name)).toEqual(['a', 'b']);
    expect(await store.getProfile('b')).toMatchObject({
      install: { disk: '/dev/sda' },
      kernelArgs: ['flatcar.autologin'],
    });
    expect(await store.deleteProfile('a')).toBe(true);
    expect(await store.deleteProfile('a')).toBe(false);
  });

  it('of racing saves that would tie, exactly one wins; the others name it', async () => {
    const racers = ['r1', 'r2', 'r3', 'r4'];
    const results = await Promise.allSettled(
      racers.map((id) => store.putSelection(selection(id, '52-54-00-00-00-01'))),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const winner = racers[results.findIndex((r) => r.status === 'fulfilled')];
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toBeInstanceOf(SelectorTieError);
        expect((result.reason as SelectorTieError).holder).toBe(winner);
      }
    }
    const listed = await store.candidates(['mac=52-54-00-00-00-01']);
    expect(listed.map((c) => c.id)).toEqual([winner]);
  });

  it('holds a member whose own item is not written yet while its claim lasts, then drops it', async () => {
    await store.putSelection(selection('gone', '52-54-00-00-00-02'));
    await clients.doc.send(
      new DeleteCommand({
        TableName: table,
        Key: ledgerItems.bootSelection('gone'),
      }),
    );
    const early = await store.putSelection(selection('next', '52-54-00-00-00-02')).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(SelectorTieError);
    expect((early as SelectorTieError).holder).toBe('gone');
    advancePastClaims();
    await store.putSelection(selection('next', '52-54-00-00-00-02'));
    expect((await store.candidates(['mac=52-54-00-00-00-02'])).map((c) => c.id)).toEqual(['next']);
  });

  it('writes tokens only over the revision read, so a racing write is told to read again', async () => {
    await store.putSelection(selection('tok', '52-54-00-00-00-03'));
    const read = await store.getSelection('tok');
    const rev = read?.rev ?? -1;
    const entry = { hash: 'a'.repeat(64), expiresAt: now };
    expect(await store.saveState('tok', { tokens: [entry] }, rev)).toBe(true);
    expect(await store.saveState('tok', { tokens: [] }, rev)).toBe(false);
    expect((await store.getSelection('tok'))?.tokens).toEqual([entry]);
    expect(await store.deleteSelection('tok')).toBe(true);
    expect(await store.candidates(['mac=52-54-00-00-00-03'])).toEqual([]);
  });
});
