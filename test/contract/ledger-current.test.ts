import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { ledgerTable } from '../../shared/ledger/access.ts';
import { type CurrentLedger, currentLedger } from '../../shared/ledger/current.ts';
import { versionSortKey } from '../../shared/ledger/versions.ts';
import { compareVersions } from '../../shared/release/version-file.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { release } from '../support/ledger-fixtures.ts';

const clients = emulatorClients();

describe('the current part of the ledger, on its own (dynalite)', () => {
  let now: Date;
  let ledger: CurrentLedger;
  let table: string;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    table = await freshTable(clients);
    await tableActive(table);
    ledger = currentLedger(ledgerTable(clients.doc, table, () => now));
  });

  it('serialises writers of current/ with a lease that runs out', async () => {
    const at = (channel: string) => ({ source: 'flatcar', channel, board: 'amd64-usr' });
    expect(await ledger.acquireCurrentSync(at('stable'), 'a', 30)).toBe(true);
    expect(await ledger.acquireCurrentSync(at('stable'), 'b', 30)).toBe(false);
    expect(await ledger.acquireCurrentSync(at('beta'), 'b', 30)).toBe(true);
    await ledger.releaseCurrentSync(at('stable'), 'b');
    expect(await ledger.acquireCurrentSync(at('stable'), 'b', 30)).toBe(false);
    await ledger.releaseCurrentSync(at('stable'), 'a');
    expect(await ledger.acquireCurrentSync(at('stable'), 'b', 30)).toBe(true);
    now = new Date(now.getTime() + 31_000);
    expect(await ledger.acquireCurrentSync(at('stable'), 'a', 30)).toBe(true);
    expect(await ledger.getCurrent(at('stable'))).toBeUndefined();
  });

  it('moves the current version only forward, in numeric order', async () => {
    const at = (version: string) => ({ ...release, version });
    expect(await ledger.advanceCurrent(at('3510.2.8'))).toBe(true);
    expect(await ledger.advanceCurrent(at('3510.2.10'))).toBe(true);
    expect(await ledger.advanceCurrent(at('3510.2.9'))).toBe(false);
    expect(await ledger.advanceCurrent(at('3510.2.10'))).toBe(false);
    expect(await ledger.advanceCurrent(at('3510.2.10.0'))).toBe(false);
    expect((await ledger.getCurrent(release))?.version).toBe('3510.2.10');
    expect(await ledger.getCurrent({ ...release, channel: 'beta' })).toBeUndefined();
    // Another source's stable is another current, however far ahead this one is.
    expect(await ledger.getCurrent({ ...release, source: 'coreos' })).toBeUndefined();
    expect(await ledger.advanceCurrent({ ...release, source: 'coreos', version: '1.0.0' })).toBe(true);
    expect((await ledger.getCurrent(release))?.version).toBe('3510.2.10');
  });
});

describe('versionSortKey', () => {
  const version = fc
    .array(fc.oneof(fc.nat({ max: 20 }), fc.nat()), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.join('.'));

  it('orders strings as compareVersions orders versions', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        const ka = versionSortKey(a);
        const kb = versionSortKey(b);
        const lexical = ka < kb ? -1 : ka > kb ? 1 : 0;
        expect(lexical).toBe(Math.sign(compareVersions(a, b)));
      }),
    );
  });

  it('refuses anything but digits and dots', () => {
    expect(() => versionSortKey('1.2/../3')).toThrow(/digits and dots/);
    expect(() => versionSortKey('1'.repeat(21))).toThrow(/longer than 20 digits/);
  });
});
