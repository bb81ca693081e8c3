import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RotationKeys, rotationKeys } from '../../local/sim-origin/rotation.ts';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { parseConfig } from '../../shared/config.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { releaseState } from '../../shared/mirror/release-state.ts';
import { at, makeKey } from '../support/pgp-fixtures.ts';
import {
  bigArtifact,
  board,
  MiB,
  type Started,
  serveFor,
  smallArtifact,
  tempDir,
  waitFor,
} from './serve-harness.ts';

const channel = 'stable';

/**
 * Key rotation on one machine, with the process (its keyring, its workers) kept warm throughout: the keyring
 * file holds the primary key with its first signing subkey, and the rotated key is dropped into the trust
 * file, as an operator uploads it to the trust object on AWS.
 */
describe('cldist serve: a rotated signing subkey without a restart', () => {
  let keys: RotationKeys;
  let sim: SimOrigin;
  let dir: string;
  let running: Started | undefined;
  const events: CldistEvent[] = [];

  beforeAll(async () => {
    const key = await makeKey({
      name: 'Rotation Test',
      subkeys: [
        { sign: true, date: at(0) },
        { sign: true, date: at(400) },
      ],
    });
    keys = rotationKeys(key);
    sim = await startSimOrigin({ privateKeyArmored: keys.privateKeyArmored });
  });

  afterEach(async () => {
    await running?.handle.close();
    running = undefined;
    events.length = 0;
    await rm(dir, { recursive: true, force: true });
  });

  afterAll(async () => {
    await sim.close();
  });

  async function start(name: string): Promise<{ started: Started; trustFile: string }> {
    dir = await tempDir(name);
    const keyFile = join(dir, 'keyring.asc');
    await writeFile(keyFile, keys.beforeArmored);
    const config = parseConfig({
      channels: [{ name: channel, baseUrl: sim.baseUrl }],
      boards: [board],
      artifacts: [{ name: 'version.txt' }, { name: bigArtifact }, { name: smallArtifact }],
      keyring: {
        files: [keyFile],
        trustedFingerprints: [keys.primaryFingerprint],
        unknownSignerRecheckSeconds: 0,
      },
    });
    const trustFile = join(dir, 'trust', 'keyring.asc');
    running = await serveFor(config, join(dir, 'data'), {
      trustFile,
      console: { format: 'json', writeLine: (line) => events.push(JSON.parse(line) as CldistEvent) },
    });
    return { started: running, trustFile };
  }

  async function release(version: string, subkey: string): Promise<void> {
    await sim.publishRelease({
      channel,
      board,
      version,
      signingSubkey: subkey,
      artifacts: [
        { name: bigArtifact, size: MiB + 5 },
        { name: smallArtifact, size: 64 * 1024 },
      ],
    });
  }

  async function pollAndDrain(started: Started): Promise<void> {
    await started.handle.pollNow();
    await started.handle.drain();
  }

  const current = async (started: Started) =>
    (await started.handle.ledger.getCurrent({ source: 'flatcar', channel, board }))?.version;

  it('mirrors N+1, signed only by the new subkey, once the rotated key is in the trust file', async () => {
    const { started, trustFile } = await start('rotation-1');
    await release('4000.0.0', keys.oldSubkey.fingerprint);
    await pollAndDrain(started);
    expect(await current(started)).toBe('4000.0.0');

    await mkdir(join(dir, 'trust'), { recursive: true });
    await writeFile(trustFile, keys.afterArmored);
    // Reloaded by the file watch (or its stat fallback) alone, with no poll and no restart.
    await waitFor(
      () => started.records.some((r) => r.event === 'trust.reloaded' && r.reason === 'watch'),
      'the trust file change to be picked up',
      15_000,
    );
    await release('4000.1.0', keys.newSubkey.fingerprint);
    await pollAndDrain(started);

    expect(await current(started)).toBe('4000.1.0');
    const detail = await started.handle.ledger.getRelease({
      source: 'flatcar',
      channel,
      board,
      version: '4000.1.0',
    });
    expect(detail?.artifactStates.map((a) => a.signingKeyFingerprint)).toEqual([
      keys.newSubkey.fingerprint,
      keys.newSubkey.fingerprint,
      keys.newSubkey.fingerprint,
    ]);
    expect(events.filter((e) => e.event === 'signing_key.unknown')).toEqual([]);
  });

  it('holds N+1 as awaiting trust with one alert naming the key, then brings it in on the next poll after the upload', async () => {
    const { started, trustFile } = await start('rotation-2');
    await release('4000.0.0', keys.oldSubkey.fingerprint);
    await pollAndDrain(started);
    await release('4000.1.0', keys.newSubkey.fingerprint);
    await pollAndDrain(started);

    const waiting = await started.handle.ledger.getRelease({
      source: 'flatcar',
      channel,
      board,
      version: '4000.1.0',
    });
    expect(waiting === undefined ? undefined : releaseState(waiting)).toBe('awaiting-trust');
    expect(waiting?.artifactStates.map((a) => a.state)).toEqual([
      'awaiting_trust',
      'awaiting_trust',
      'awaiting_trust',
    ]);
    expect(await current(started)).toBe('4000.0.0');
    const alerts = events.filter((e) => e.event === 'signing_key.unknown');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.detail).toMatchObject({ keyId: keys.newSubkey.keyId, upload: trustFile });
    expect(events.some((e) => e.event === 'artifact.verification_failed')).toBe(false);

    // A poll under the same trust sends nothing again and alerts no more.
    expect((await started.handle.pollNow()).requeuedForTrust).toBe(0);

    await mkdir(join(dir, 'trust'), { recursive: true });
    await writeFile(trustFile, keys.afterArmored);
    const report = await started.handle.pollNow();
    expect(report.requeuedForTrust).toBe(3);
    await started.handle.drain();
    await waitFor(async () => (await current(started)) === '4000.1.0', 'current to move to 4000.1.0');
    expect(events.filter((e) => e.event === 'signing_key.unknown')).toHaveLength(1);
    expect(events.filter((e) => e.event === 'release.mirrored').map((e) => e.version)).toEqual([
      '4000.0.0',
      '4000.1.0',
    ]);
  });
});
