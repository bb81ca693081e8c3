import { type LedgerTable, strip } from './access.ts';
import type { PollState, StreamRef } from './records.ts';
import {
  ledgerIndex,
  ledgerIndexEntry,
  ledgerIndexListing,
  ledgerItems,
  ledgerKindAttribute,
  streamKey,
} from './table.ts';

/** What the poller last saw upstream per source, channel and board, so an unchanged upstream costs one small request. */
export interface PollLedger {
  getPollState(stream: StreamRef): Promise<PollState | undefined>;
  savePollState(state: PollState): Promise<void>;
  listPollStates(): Promise<PollState[]>;
}

export function pollLedger(table: LedgerTable): PollLedger {
  return {
    async getPollState(stream) {
      const item = await table.get('get poll state', ledgerItems.pollState(stream));
      return item === undefined ? undefined : strip<PollState>(item);
    },

    async savePollState(state) {
      await table.put('save poll state', {
        ...ledgerItems.pollState(state),
        ...ledgerIndexEntry(ledgerIndex.pollStates, streamKey(state)),
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
