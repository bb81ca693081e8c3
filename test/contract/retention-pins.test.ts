import { beforeAll, describe, expect, it } from 'vitest';
import { type BootStore, createDynamoBootStore } from '../../shared/boot/store.ts';
import { loadConfigFile } from '../../shared/config.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { featurePins } from '../../shared/retention/feature-pins.ts';
import type { PinnedReleases } from '../../shared/retention/pinned.ts';
import { parseGroupInput } from '../../shared/update/groups.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const now = '2026-12-03T00:00:00.000Z';
const clock = () => new Date(now);

/** What retention may not delete, read from profiles and update groups on one ledger table (dynalite). */
describe('releases pinned by bare-metal profiles and update groups', () => {
  let store: BootStore;
  let ledger: Ledger;
  let pins: PinnedReleases;

  beforeAll(async () => {
    const clients = emulatorClients();
    const table = await freshTable(clients);
    await tableActive(table);
    store = createDynamoBootStore(clients.doc, table, clock);
    ledger = createDynamoLedger(clients.doc, table, { clock });
    // CoreOS first, so a bare `stable` means CoreOS's stable; Flatcar's stable is pinned by no one.
    const { sources } = loadConfigFile('examples/coreos-and-flatcar.json');
    pins = featurePins({ profiles: store, groups: ledger, sources });
  });

  it('pins nothing while no profile or group names a version', async () => {
    expect(await pins.isPinned({ source: 'coreos', channel: 'stable', board: 'amd64-usr' }, '3510.2.8')).toBe(
      false,
    );
  });

  it("pins a profile's exact channel, board and version, and a group's version on every board", async () => {
    const profile = { kernelArgs: [], createdAt: now, updatedAt: now };
    await store.putProfile({
      ...profile,
      name: 'rack',
      channel: 'stable',
      board: 'amd64-usr',
      version: '3510.2.8',
    });
    await store.putProfile({
      ...profile,
      name: 'edge',
      channel: 'beta',
      board: 'arm64-usr',
      version: 'current',
    });
    await ledger.putGroup({
      ...parseGroupInput({ channel: 'stable', version: '3602.1.0' }),
      name: 'hold',
      updatedAt: now,
    });
    await ledger.putGroup({ ...parseGroupInput({ channel: 'lts' }), name: 'lts', updatedAt: now });

    const amd = { source: 'coreos', channel: 'stable', board: 'amd64-usr' };
    const arm = { source: 'coreos', channel: 'stable', board: 'arm64-usr' };
    const flatcarAmd = { source: 'flatcar', channel: 'stable', board: 'amd64-usr' };
    expect(await pins.isPinned(amd, '3510.2.8')).toBe(true);
    expect(await pins.isPinned(arm, '3510.2.8')).toBe(false);
    expect(await pins.isPinned({ source: 'flatcar', channel: 'lts', board: 'arm64-usr' }, '3510.2.8')).toBe(
      false,
    );
    expect(await pins.isPinned(amd, '3602.1.0')).toBe(true);
    expect(await pins.isPinned(arm, '3602.1.0')).toBe(true);
    expect(await pins.isPinned({ source: 'flatcar', channel: 'lts', board: 'amd64-usr' }, '3602.1.0')).toBe(
      false,
    );
    // Following `current` pins no version, not even one named "current".
    expect(await pins.isPinned({ source: 'flatcar', channel: 'lts', board: 'arm64-usr' }, 'current')).toBe(
      false,
    );
    expect(await pins.isPinned(amd, '3374.2.5')).toBe(false);
    // The same channel name in the other source is another stream: neither pin reaches it.
    expect(await pins.isPinned(flatcarAmd, '3510.2.8')).toBe(false);
    expect(await pins.isPinned(flatcarAmd, '3602.1.0')).toBe(false);
  });

  it('lets a release go once the profile pinning it is deleted', async () => {
    await store.putProfile({
      name: 'old',
      channel: 'lts',
      board: 'amd64-usr',
      version: '3033.3.18',
      kernelArgs: [],
      createdAt: now,
      updatedAt: now,
    });
    const lts = { source: 'flatcar', channel: 'lts', board: 'amd64-usr' };
    expect(await pins.isPinned(lts, '3033.3.18')).toBe(true);
    expect(await store.deleteProfile('old')).toBe(true);
    expect(await pins.isPinned(lts, '3033.3.18')).toBe(false);
  });
});
