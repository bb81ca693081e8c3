import type { Server } from 'node:http';

export interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  maxItemSizeKb?: number;
}

/** `dynalite(options)`, answering TransactWriteItems (Put, Delete, ConditionCheck) too. */
export function createDynalite(options?: DynaliteOptions): Server;
