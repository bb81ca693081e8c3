import type { Server } from 'node:http';
import type { CompactionOptions } from './ledger-compaction.cjs';

export interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  maxItemSizeKb?: number;
  /** classic-level's open options for a store on disk. */
  level?: { maxOpenFiles?: number; cacheSize?: number; maxFileSize?: number; writeBufferSize?: number };
  /** Full compactions once writes settle after a large load (see `ledger-compaction.cjs`). */
  compaction?: CompactionOptions;
}

export interface DynaliteServer extends Server {
  /** GetItem without HTTP, for a caller in the same thread; native key and item, as the document client. */
  readItem(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  /** BatchWriteItem without HTTP, for a caller in the same thread; native values, as the document client. */
  writeItems(
    table: string,
    requests: (
      | { PutRequest: { Item: Record<string, unknown> } }
      | { DeleteRequest: { Key: Record<string, unknown> } }
    )[],
  ): Promise<void>;
}

/** `dynalite(options)`, answering TransactWriteItems (Put, Delete, ConditionCheck) too. */
export function createDynalite(options?: DynaliteOptions): DynaliteServer;
