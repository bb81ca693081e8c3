import type { Server } from 'node:http';

export interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  maxItemSizeKb?: number;
  /** classic-level's open options for a store on disk. */
  level?: { maxOpenFiles?: number; cacheSize?: number; maxFileSize?: number; writeBufferSize?: number };
}

export interface DynaliteServer extends Server {
  /** GetItem without HTTP, for a caller in the same thread; native key and item, as the document client. */
  readItem(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
}

/** `dynalite(options)`, answering TransactWriteItems (Put, Delete, ConditionCheck) too. */
export function createDynalite(options?: DynaliteOptions): DynaliteServer;
