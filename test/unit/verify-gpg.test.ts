import { enums, type PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Keyring, loadKeyring } from '../../shared/verify/keyring.ts';
import { SignatureError } from '../../shared/verify/types.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';
import {
  at,
  chunksOf,
  fingerprint,
  type Gpg,
  makeKey,
  publicArmor,
  randomBytes,
  revokeSubkey,
  signDetached,
  startGpg,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';

// The real gpg is the second opinion: where it and cldist agree the fixtures are sound, and where
// cldist is stricter the difference is written down here on purpose.

const data = randomBytes(100_000, 5);
const options = { now: at(400), maxClockSkewSeconds: 300 };
let key: PrivateKey;
let keyring: Keyring;
let gpg: Gpg;

/** The VALIDSIG status line: signing key fingerprint, ..., digest algorithm, ..., primary fingerprint. */
function validsig(status: string[]): { signer: string; hash: string; primary: string } | undefined {
  const line = status.find((l) => l.startsWith('VALIDSIG '));
  if (line === undefined) {
    return undefined;
  }
  const fields = line.split(' ');
  return { signer: fields[1] ?? '', hash: fields[8] ?? '', primary: fields[10] ?? '' };
}

beforeAll(async () => {
  // Subkey 0: Ed25519, expires day 100. Subkey 1: RSA (for SHA-1). Subkey 2: revoked as compromised.
  // Subkey 3: Ed25519, never expires.
  key = await makeKey({ name: 'Second Opinion', subkeys: [{ sign: true, keyExpirationTime: 100 * 86_400 }] });
  key = await key.addSubkey({ type: 'rsa', rsaBits: 2048, sign: true, date: at(1) });
  key = await key.addSubkey({ sign: true, date: at(2) });
  await revokeSubkey(key, 2, enums.reasonForRevocation.keyCompromised, at(200));
  key = await key.addSubkey({ sign: true, date: at(3) });
  keyring = await loadKeyring([publicArmor(key)], [fingerprint(key)]);
  gpg = await startGpg();
  await gpg.importKey(publicArmor(key));
});

afterAll(async () => {
  await gpg.close();
});

describe('gpg agrees', () => {
  it('on a good binary signature, and on who made it', async () => {
    const signature = await signDetached(subkeyPacket(key, 3), data, { date: at(50) });
    const ours = await verifyDetached(chunksOf(data), signature, keyring, { ...options, now: at(60) });
    const theirs = await gpg.verify(signature, data);
    expect(theirs.code).toBe(0);
    expect(theirs.status.some((l) => l.startsWith('GOODSIG '))).toBe(true);
    expect(validsig(theirs.status)).toEqual({
      signer: ours.signingKeyFingerprint,
      hash: String(enums.hash.sha512),
      primary: ours.primaryKeyFingerprint,
    });
  });

  it('on tampered data', async () => {
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(50) });
    const tampered = data.slice();
    tampered[500] = (tampered[500] ?? 0) ^ 0x80;
    const theirs = await gpg.verify(signature, tampered);
    expect(theirs.code).toBe(1);
    expect(theirs.status.some((l) => l.startsWith('BADSIG '))).toBe(true);
    await expect(verifyDetached(chunksOf(tampered), signature, keyring, options)).rejects.toMatchObject({
      reason: 'tampered',
    });
  });

  it('that an old signature from a since-expired subkey is good', async () => {
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(50) });
    const theirs = await gpg.verify(signature, data);
    expect(theirs.code).toBe(0);
    expect(theirs.status.some((l) => l.startsWith('EXPKEYSIG '))).toBe(true);
    await expect(verifyDetached(chunksOf(data), signature, keyring, options)).resolves.toMatchObject({
      signatureCreated: at(50),
    });
  });
});

describe('cldist is stricter than gpg', () => {
  it('refuses a compromise-revoked subkey, which gpg accepts with a warning', async () => {
    const signature = await signDetached(subkeyPacket(key, 2), data, { date: at(50) });
    const theirs = await gpg.verify(signature, data);
    expect(theirs.code).toBe(0);
    expect(theirs.status.some((l) => l.startsWith('REVKEYSIG '))).toBe(true);
    expect(theirs.stderr).toContain('Key has been compromised');
    const error = await verifyDetached(chunksOf(data), signature, keyring, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureError);
    expect((error as SignatureError).reason).toBe('subkey-revoked-compromised');
  });

  it('refuses a signature made after its subkey expired, which gpg also calls good', async () => {
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(150) });
    const theirs = await gpg.verify(signature, data);
    expect(theirs.code).toBe(0);
    expect(theirs.status.some((l) => l.startsWith('EXPKEYSIG '))).toBe(true);
    await expect(verifyDetached(chunksOf(data), signature, keyring, options)).rejects.toMatchObject({
      reason: 'key-not-valid-at-signing',
    });
  });

  it('refuses a SHA-1 signature that gpg verifies as good', async () => {
    const signature = await signDetached(subkeyPacket(key, 1), data, { date: at(50), hash: enums.hash.sha1 });
    const theirs = await gpg.verify(signature, data);
    expect(theirs.code).toBe(0);
    expect(theirs.status.some((l) => l.startsWith('GOODSIG '))).toBe(true);
    expect(validsig(theirs.status)?.hash).toBe(String(enums.hash.sha1));
    await expect(verifyDetached(chunksOf(data), signature, keyring, options)).rejects.toMatchObject({
      reason: 'weak-hash',
    });
  });
});
