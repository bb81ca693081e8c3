import type { Worker } from 'node:worker_threads';

/** A failed call as the ledger thread reports it: the DynamoDB exception name and status, if any. */
export interface ItemFailure {
  name: string;
  message: string;
  status?: number;
}

/** The thread's answer to a read (with the item, if there is one) or to a write. */
export interface ItemAnswer {
  op: 'item';
  id: number;
  item?: Record<string, unknown>;
  error?: ItemFailure;
}

/** One BatchWriteItem request, with native values as the document client takes them. */
export type ItemWrite =
  | { PutRequest: { Item: Record<string, unknown> } }
  | { DeleteRequest: { Key: Record<string, unknown> } };

/**
 * An error shaped as the SDK's: `name` the DynamoDB exception, `$metadata.httpStatusCode` its status.
 * Without a status (the thread is gone) callers take it for an unreachable service and retry.
 */
export function itemError(failure: ItemFailure): Error {
  const error = new Error(`ledger call: ${failure.message}`);
  error.name = failure.name;
  return Object.assign(error, {
    $metadata: failure.status === undefined ? {} : { httpStatusCode: failure.status },
  });
}

export interface LedgerCalls {
  read(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  /** BatchWriteItem's requests, all processed (the thread leaves none unprocessed) or the call fails. */
  write(table: string, requests: ItemWrite[]): Promise<void>;
}

/**
 * GetItem and BatchWriteItem calls to one ledger thread, matched to its answers by id. When the thread exits, every call
 * still waiting, and every later one, fails as retryable: the restarted thread has callers of its own.
 */
export function ledgerCallsOver(worker: Worker): LedgerCalls {
  type Waiting = {
    resolve: (item: Record<string, unknown> | undefined) => void;
    reject: (error: Error) => void;
  };
  const waiting = new Map<number, Waiting>();
  let nextId = 0;
  let exited = false;
  worker.on('message', (message: ItemAnswer | { op: string }) => {
    if (message.op !== 'item') return;
    const answer = message as ItemAnswer;
    const call = waiting.get(answer.id);
    if (call === undefined) return;
    waiting.delete(answer.id);
    if (answer.error === undefined) call.resolve(answer.item);
    else call.reject(itemError(answer.error));
  });
  worker.once('exit', () => {
    exited = true;
    const calls = [...waiting.values()];
    waiting.clear();
    for (const call of calls)
      call.reject(itemError({ name: 'LedgerThreadDown', message: 'the ledger thread stopped' }));
  });
  const call = (message: Record<string, unknown>) => {
    if (exited) {
      return Promise.reject(itemError({ name: 'LedgerThreadDown', message: 'the ledger thread stopped' }));
    }
    const id = nextId++;
    return new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  };
  return {
    read: (table, key) => call({ op: 'get', table, key }),
    write: async (table, requests) => {
      await call({ op: 'write', table, requests });
    },
  };
}
