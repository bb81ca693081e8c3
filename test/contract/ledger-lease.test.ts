import { beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../shared/errors.ts';
import { type LedgerTable, ledgerTable } from '../../shared/ledger/access.ts';
import { endLease, takeLease } from '../../shared/ledger/lease.ts';
import { ledgerKey } from '../../shared/ledger/table.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const key = ledgerKey('lease-test', 'item');
const lease = { attribute: 'leaseUntil' };

describe('the lease every leased ledger operation takes (dynalite)', () => {
  let now: Date;
  let table: LedgerTable;
  let name: string;
  const later = (seconds: number) => {
    now = new Date(now.getTime() + seconds * 1000);
  };

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    name = await freshTable(clients);
    await tableActive(name);
    table = ledgerTable(clients.doc, name, () => now);
  });

  it('hands an anonymous lease to one of many callers, and again once it ran out or was given back', async () => {
    const takes = await Promise.all(
      Array.from({ length: 6 }, () => takeLease(table, 'take', key, { ...lease, seconds: 30 })),
    );
    expect(takes.filter((item) => item !== undefined)).toHaveLength(1);
    expect(takes.find((item) => item !== undefined)?.leaseUntil).toBe('2026-11-01T12:00:30.000Z');
    later(30);
    expect(await takeLease(table, 'take', key, { ...lease, seconds: 30 })).toBeUndefined();
    later(1);
    expect(await takeLease(table, 'take', key, { ...lease, seconds: 30 })).toBeDefined();
    expect(await endLease(table, 'end', key, lease)).toBe(true);
    expect((await table.get('get', key))?.leaseUntil).toBeUndefined();
    expect(await takeLease(table, 'take', key, { ...lease, seconds: 30 })).toBeDefined();
  });

  it('lets a named holder take its own lease again, and only it give the lease back', async () => {
    const as = (holder: string) => ({ ...lease, holder, seconds: 30 });
    expect(await takeLease(table, 'take', key, as('a'))).toBeDefined();
    expect(await takeLease(table, 'take', key, as('b'))).toBeUndefined();
    later(10);
    expect((await takeLease(table, 'take', key, as('a')))?.leaseUntil).toBe('2026-11-01T12:00:40.000Z');
    expect(await endLease(table, 'end', key, { ...lease, holder: 'b' })).toBe(false);
    expect(await takeLease(table, 'take', key, as('b'))).toBeUndefined();
    expect(await endLease(table, 'end', key, { ...lease, holder: 'a' })).toBe(true);
    expect(await takeLease(table, 'take', key, as('b'))).toMatchObject({ holder: 'b' });
  });

  it('takes nothing when the caller condition fails, and makes the caller changes in the same write', async () => {
    await table.put('seed', { ...key, state: 'verified' });
    const onlyPending = {
      condition: '#state = :pending',
      names: { '#state': 'state' },
      values: { ':pending': 'pending' },
    };
    expect(await takeLease(table, 'take', key, { ...lease, seconds: 30 }, onlyPending)).toBeUndefined();
    expect((await table.get('get', key))?.leaseUntil).toBeUndefined();
    await table.put('seed', { ...key, state: 'pending' });
    const taken = await takeLease(
      table,
      'take',
      key,
      { ...lease, seconds: 30 },
      {
        ...onlyPending,
        set: ['note = :note'],
        add: ['attempts :one'],
        values: { ...onlyPending.values, ':note': 'x', ':one': 1 },
      },
    );
    expect(taken).toMatchObject({
      state: 'pending',
      note: 'x',
      attempts: 1,
      leaseUntil: '2026-11-01T12:00:30.000Z',
    });
    const ended = await endLease(table, 'end', key, lease, {
      set: ['note = :note'],
      condition: '#state = :verified',
      names: { '#state': 'state' },
      values: { ':note': 'y', ':verified': 'verified' },
    });
    expect(ended).toBe(false);
    expect(await table.get('get', key)).toMatchObject({ note: 'x', leaseUntil: '2026-11-01T12:00:30.000Z' });
  });

  it('never creates an item by giving a lease back', async () => {
    expect(await endLease(table, 'end', key, lease)).toBe(false);
    expect(await endLease(table, 'end', key, { ...lease, holder: 'a' })).toBe(false);
    expect(await table.get('get', key)).toBeUndefined();
  });

  it('reports an unreachable table as a transient failure named by the operation', async () => {
    const missing = ledgerTable(clients.doc, `${name}-absent`, () => now);
    const failure = await takeLease(missing, 'begin something', key, { ...lease, seconds: 30 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(TransientError);
    expect(failure).toMatchObject({ message: expect.stringMatching(/^ledger begin something failed: /) });
    await expect(endLease(missing, 'end something', key, lease)).rejects.toThrow(
      /ledger end something failed/,
    );
  });
});
