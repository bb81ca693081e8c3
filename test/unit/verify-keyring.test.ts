import { enums } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, resolveProjectPath } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import {
  type Keyring,
  keyringStatus,
  loadKeyring,
  loadKeyringFromConfig,
} from '../../shared/verify/keyring.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';
import {
  at,
  chunksOf,
  fingerprint,
  makeKey,
  publicArmor,
  randomBytes,
  revokeSubkey,
  signDetached,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';

const FLATCAR = 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A';
const COREOS = '04127D0BFABEC8871FFB2CCE50E0885593D2DCB4';
const FLATCAR_CURRENT = '52F145DFD00BBDCD928CBB5A32DA80F91EF52974';

describe('loadKeyring', () => {
  it('names the input whose armor is malformed', async () => {
    const good = publicArmor(await makeKey({ name: 'Good' }));
    const attempt = loadKeyring([good, 'not a key at all'], []);
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(/keyring input #2 is not an ASCII-armored OpenPGP public key/);
  });

  it('uses the labels it is given to name a bad input', async () => {
    await expect(loadKeyring(['garbage'], [], ['keys/broken.asc'])).rejects.toThrow(/keys\/broken\.asc/);
  });

  it('refuses a trusted fingerprint that matches no primary key, so a typo fails at start', async () => {
    const key = await makeKey({ name: 'Only' });
    const subkeyFingerprint = fingerprint(key.subkeys[0] ?? key);
    await expect(loadKeyring([publicArmor(key)], [subkeyFingerprint])).rejects.toThrow(
      new RegExp(`trusted fingerprint ${subkeyFingerprint}`),
    );
  });

  it('reads several keys from one text, and accepts fingerprints in any case and with spaces', async () => {
    const a = await makeKey({ name: 'A' });
    const b = await makeKey({ name: 'B' });
    const spaced = fingerprint(b)
      .toLowerCase()
      .replace(/(.{4})/g, '$1 ');
    const ring = await loadKeyring([publicArmor(a) + publicArmor(b)], [fingerprint(a), spaced]);
    expect(ring.keys).toHaveLength(2);
    expect([...ring.trustedFingerprints]).toEqual([fingerprint(a), fingerprint(b)]);
  });

  it('merges a rotated copy of a key (one more subkey) with the bundled one', async () => {
    const before = await makeKey({ name: 'Rotated' });
    const after = await before.addSubkey({ sign: true, date: at(400) });
    const ring = await loadKeyring([publicArmor(before), publicArmor(after)], [fingerprint(before)]);
    const data = randomBytes(5000);
    const signature = await signDetached(subkeyPacket(after, 1), data, { date: at(410) });
    const result = await verifyDetached(chunksOf(data), signature, ring, {
      now: at(420),
      maxClockSkewSeconds: 0,
    });
    expect(result.signingKeyFingerprint).toBe(fingerprint(after.subkeys[1] ?? after));
    expect(keyringStatus(ring, at(420), 30).current[0]?.signingKeyFingerprint).toBe(
      fingerprint(after.subkeys[1] ?? after),
    );
  });
});

describe('keyringStatus', () => {
  it('reports the newest valid signing subkey and warns only inside the window', async () => {
    let key = await makeKey({ name: 'Status', subkeys: [{ sign: true, keyExpirationTime: 365 * 86_400 }] });
    key = await key.addSubkey({ sign: true, date: at(300), keyExpirationTime: 100 * 86_400 });
    const ring = await loadKeyring([publicArmor(key)], [fingerprint(key)]);
    const newest = fingerprint(key.subkeys[1] ?? key);
    const first = fingerprint(key.subkeys[0] ?? key);

    expect(keyringStatus(ring, at(100), 30)).toEqual({
      current: [{ primaryKeyFingerprint: fingerprint(key), signingKeyFingerprint: first, expires: at(365) }],
      expiringSoon: [],
    });
    const justBefore = keyringStatus(ring, at(310), 30);
    expect(justBefore.current).toEqual([
      { primaryKeyFingerprint: fingerprint(key), signingKeyFingerprint: newest, expires: at(400) },
    ]);
    expect(justBefore.expiringSoon).toEqual([]);
    expect(keyringStatus(ring, at(371), 30).expiringSoon.map((s) => s.signingKeyFingerprint)).toEqual([
      newest,
    ]);
    expect(keyringStatus(ring, at(369), 30).expiringSoon).toEqual([]);
    expect(keyringStatus(ring, at(400), 30)).toEqual({ current: [], expiringSoon: [] });
  });

  it('skips revoked subkeys and subkeys that may not sign, and untrusted primaries', async () => {
    let key = await makeKey({ name: 'Mixed' });
    key = await key.addSubkey({ sign: true, date: at(50) });
    key = await key.addSubkey({ sign: false, date: at(60) });
    await revokeSubkey(key, 1, enums.reasonForRevocation.keySuperseded, at(70));
    const other = await makeKey({ name: 'Other' });
    const ring = await loadKeyring([publicArmor(key), publicArmor(other)], [fingerprint(key)]);
    expect(keyringStatus(ring, at(65), 30).current.map((s) => s.signingKeyFingerprint)).toEqual([
      fingerprint(key.subkeys[1] ?? key),
    ]);
    expect(keyringStatus(ring, at(80), 30).current).toEqual([
      { primaryKeyFingerprint: fingerprint(key), signingKeyFingerprint: fingerprint(key.subkeys[0] ?? key) },
    ]);
  });
});

describe('the real upstream keys in keys/', () => {
  let ring: Keyring;
  beforeAll(async () => {
    ring = await loadKeyringFromConfig(parseConfig({}).keyring);
  });

  it('trusts the Flatcar and CoreOS primaries and holds their signing subkeys', () => {
    expect([...ring.trustedFingerprints].sort()).toEqual([COREOS, FLATCAR].sort());
    const subkeysOf = (primary: string) =>
      [...ring.entries.values()].filter((e) => !e.isPrimary && e.primaryFingerprint === primary);
    const flatcar = subkeysOf(FLATCAR);
    expect(flatcar).toHaveLength(9);
    expect(flatcar.every((e) => e.algorithmCanSign && e.bindings.every((b) => b.flagsAllowSigning))).toBe(
      true,
    );
    const compromised = flatcar.filter((e) =>
      e.revocations.some((r) => r.reason === enums.reasonForRevocation.keyCompromised),
    );
    expect(compromised.map((e) => e.fingerprint).sort()).toEqual([
      '1E100DD7A677A6F9A532C9F9B51DE377064D542D',
      'A621F1DA96C93C639506832D603443A1D0FC498C',
    ]);
    expect(subkeysOf(COREOS)).toHaveLength(8);
  });

  it('warns on 2027-02-20 that the current Flatcar subkey expires on 2027-03-08', () => {
    const status = keyringStatus(ring, new Date('2027-02-20T00:00:00Z'), 30);
    expect(status.expiringSoon).toEqual([
      { primaryKeyFingerprint: FLATCAR, signingKeyFingerprint: FLATCAR_CURRENT, expires: expect.any(Date) },
    ]);
    expect(status.expiringSoon[0]?.expires?.toISOString().slice(0, 10)).toBe('2027-03-08');
  });

  it('does not warn on 2026-11-26, and finds no valid CoreOS subkey (all expired)', () => {
    const status = keyringStatus(ring, new Date('2026-11-26T00:00:00Z'), 30);
    expect(status.current.map((s) => s.signingKeyFingerprint)).toEqual([FLATCAR_CURRENT]);
    expect(status.expiringSoon).toEqual([]);
  });

  it('adds extra armored texts (a rotation object) to the configured files', async () => {
    const extra = await makeKey({ name: 'Next Flatcar' });
    const config = parseConfig({
      keyring: { trustedFingerprints: [FLATCAR, fingerprint(extra)] },
    }).keyring;
    const withExtra = await loadKeyringFromConfig(config, [publicArmor(extra)]);
    expect(withExtra.trustedFingerprints.has(fingerprint(extra))).toBe(true);
    await expect(loadKeyringFromConfig(config)).rejects.toThrow(/trusted fingerprint/);
  });

  it('names a keyring file that cannot be read', async () => {
    const config = parseConfig({ keyring: { files: ['keys/missing.asc'] } }).keyring;
    await expect(loadKeyringFromConfig(config)).rejects.toThrow(
      new RegExp(`keyring.files: cannot read ${resolveProjectPath('keys/missing.asc')}`),
    );
  });
});
