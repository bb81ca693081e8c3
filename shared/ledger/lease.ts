import type { Item, LedgerTable, WriteParts } from './access.ts';
import { type LedgerKey, ledgerKeySchema, ledgerLeaseHolderAttribute } from './table.ts';

/**
 * A lease: the right to do something for a while, held by whoever's write set its expiry. Every leased
 * operation of the ledger (an artifact's attempt, a release's finalize, an alert's publish, a write of
 * `current/`) takes and gives back its lease here, so "free" means the same everywhere: never taken,
 * given back, or run out.
 */
export interface Lease {
  /** The attribute that holds the lease's expiry, an ISO time. */
  attribute: string;
  /**
   * Who takes it. A named holder may take its own lease again before it runs out, and only it may give
   * the lease back; an anonymous lease (no holder) is given back by whoever finished the work.
   */
  holder?: string;
}

export interface LeaseTerms extends Lease {
  seconds: number;
  /** The time the lease is taken at, when the caller writes it elsewhere too; the table's clock if unset. */
  now?: Date;
}

function holderParts(lease: Lease): WriteParts {
  return lease.holder === undefined
    ? {}
    : { names: { '#leaseHolder': ledgerLeaseHolderAttribute }, values: { ':leaseHolder': lease.holder } };
}

/** True if `text` is one parenthesised group, which DynamoDB refuses to see wrapped again. */
function isEnclosed(text: string): boolean {
  if (!text.startsWith('(') || !text.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < text.length - 1; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    if (depth === 0) return false;
  }
  return true;
}

/** One write of several parts' changes; their conditions must all hold (each is parenthesised when joined). */
export function mergeWriteParts(...all: WriteParts[]): WriteParts {
  const given = all.flatMap((parts) => (parts.condition === undefined ? [] : [parts.condition]));
  const conditions = given.length < 2 ? given : given.map((text) => (isEnclosed(text) ? text : `(${text})`));
  return {
    set: all.flatMap((parts) => parts.set ?? []),
    add: all.flatMap((parts) => parts.add ?? []),
    remove: all.flatMap((parts) => parts.remove ?? []),
    ...(conditions.length === 0 ? {} : { condition: conditions.join(' AND ') }),
    names: Object.assign({}, ...all.map((parts) => parts.names ?? {})),
    values: Object.assign({}, ...all.map((parts) => parts.values ?? {})),
  };
}

/**
 * Takes the lease on the item at `key` if it is free and `also.condition` holds, making `also`'s changes in
 * the same write. Returns the item after the write, or undefined if the lease was held or the condition
 * failed. The item is created if absent unless `also.condition` requires it.
 */
export function takeLease(
  table: LedgerTable,
  operation: string,
  key: LedgerKey,
  terms: LeaseTerms,
  also: WriteParts = {},
): Promise<Item | undefined> {
  const now = terms.now ?? table.clock();
  const free = 'attribute_not_exists(#lease) OR #lease < :leaseNow';
  const lease: WriteParts = {
    set: ['#lease = :leaseUntil', ...(terms.holder === undefined ? [] : ['#leaseHolder = :leaseHolder'])],
    condition: terms.holder === undefined ? free : `${free} OR #leaseHolder = :leaseHolder`,
    names: { '#lease': terms.attribute },
    values: {
      ':leaseNow': now.toISOString(),
      ':leaseUntil': new Date(now.getTime() + terms.seconds * 1000).toISOString(),
    },
  };
  return table.updateReturning(operation, key, mergeWriteParts(lease, holderParts(terms), also));
}

/**
 * Gives the lease on the item at `key` back (a named lease only by its holder), making `also`'s changes in
 * the same write if `also.condition` holds. True if the write was made; an item that does not exist is
 * never created.
 */
export function endLease(
  table: LedgerTable,
  operation: string,
  key: LedgerKey,
  lease: Lease,
  also: WriteParts = {},
): Promise<boolean> {
  const own: WriteParts = {
    remove: ['#lease', ...(lease.holder === undefined ? [] : ['#leaseHolder'])],
    condition:
      lease.holder === undefined
        ? 'attribute_exists(#leaseItem)'
        : 'attribute_exists(#leaseItem) AND #leaseHolder = :leaseHolder',
    names: { '#lease': lease.attribute, '#leaseItem': ledgerKeySchema.partitionKey },
  };
  return table.update(operation, key, mergeWriteParts(own, holderParts(lease), also));
}
