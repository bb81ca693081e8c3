import { type LedgerTable, strip } from './access.ts';
import type { PollState } from './records.ts';
import {
  ledgerIndex,
  ledgerIndexEntry,
  ledgerIndexListing,
  ledgerItems,
  ledgerKindAttribute,
} from './table.ts';

/** What the poller last saw upstream per channel and board, so an unchanged upstream costs one small request. */
export interface PollLedger {
  getPollState(channel: string, board: string): Promise<PollState | undefined>;
  savePollState(state: PollState): Promise<void>;
  listPollStates(): Promise<PollState[]>;
}

export function pollLedger(table: LedgerTable): PollLedger {
  return {
    async getPollState(channel, board) {
      const item = await table.get('get poll state', ledgerItems.pollState(channel, board));
      return item === undefined ? undefined : strip<PollState>(item);
    },

    async savePollState(state) {
      await table.put('save poll state', {
        ...ledgerItems.pollState(state.channel, state.board),
        ...ledgerIndexEntry(ledgerIndex.pollStates, `${state.channel}#${state.board}`),
        [ledgerKindAttribute]: 'poll',
        ...state,
      });
    },

    async listPollStates() {
      const items = await table.query('list poll states', ledgerIndexListing(ledgerIndex.pollStates));
      return items.map((item) => strip<PollState>(item));
    },
  };
}
