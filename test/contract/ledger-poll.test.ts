import { beforeEach, describe, expect, it } from 'vitest';
import { ledgerTable } from '../../shared/ledger/access.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import { type PollLedger, pollLedger } from '../../shared/ledger/poll.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { plans, release } from '../support/ledger-fixtures.ts';

const clients = emulatorClients();

describe('the poll part of the ledger, on its own (dynalite)', () => {
  const checkedAt = '2026-11-01T12:00:00.000Z';
  let table: string;
  let ledger: PollLedger;

  beforeEach(async () => {
    table = await freshTable(clients);
    await tableActive(table);
    ledger = pollLedger(ledgerTable(clients.doc, table, () => new Date(checkedAt)));
  });

  it('knows nothing of a channel and board never polled', async () => {
    expect(
      await ledger.getPollState({ source: 'flatcar', channel: 'stable', board: 'amd64-usr' }),
    ).toBeUndefined();
    expect(await ledger.listPollStates()).toEqual([]);
  });

  it('replaces the whole state on save, so a validator upstream dropped is not sent again', async () => {
    await ledger.savePollState({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      etag: '"x"',
      checkedAt,
    });
    await ledger.savePollState({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      lastModified: 'Sun, 01 Nov 2026 11:00:00 GMT',
      checkedAt,
    });
    expect(await ledger.getPollState({ source: 'flatcar', channel: 'stable', board: 'amd64-usr' })).toEqual({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      lastModified: 'Sun, 01 Nov 2026 11:00:00 GMT',
      checkedAt,
    });
  });

  it('lists one state per channel and board in their order, and nothing else on the table', async () => {
    await createDynamoLedger(clients.doc, table).claimRelease(release, plans);
    for (const [source, channel, board] of [
      ['flatcar', 'stable', 'arm64-usr'],
      ['flatcar', 'beta', 'amd64-usr'],
      ['flatcar', 'stable', 'amd64-usr'],
      ['coreos', 'stable', 'amd64-usr'],
    ] as const) {
      await ledger.savePollState({ source, channel, board, lastVersion: '1.0', checkedAt });
    }
    expect((await ledger.listPollStates()).map((s) => `${s.source}/${s.channel}/${s.board}`)).toEqual([
      'coreos/stable/amd64-usr',
      'flatcar/beta/amd64-usr',
      'flatcar/stable/amd64-usr',
      'flatcar/stable/arm64-usr',
    ]);
  });
});
