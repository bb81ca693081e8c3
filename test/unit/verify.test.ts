import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enums, type PrivateKey, readKey, reformatKey, type SecretKeyPacket } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../shared/errors.ts';
import { type Keyring, loadKeyring } from '../../shared/verify/keyring.ts';
import { readChunks } from '../../shared/verify/read-chunks.ts';
import { SignatureError, type SignatureFailure, type VerifyOptions } from '../../shared/verify/types.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';
import {
  at,
  bindWithoutBackSignature,
  chunksOf,
  fingerprint,
  makeKey,
  publicArmor,
  randomBytes,
  revokeSubkey,
  signDetached,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';

const data = randomBytes(200_000, 7);
const options = (now: Date, extra: Partial<VerifyOptions> = {}): VerifyOptions => ({
  now,
  maxClockSkewSeconds: 300,
  ...extra,
});

async function refusal(promise: Promise<unknown>): Promise<SignatureError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SignatureError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected the signature to be refused, but it was accepted');
}

async function expectRefused(promise: Promise<unknown>, reason: SignatureFailure): Promise<SignatureError> {
  const error = await refusal(promise);
  expect(error.reason).toBe(reason);
  expect(error.code).toBe(`bad-signature:${reason}`);
  return error;
}

/** Yields `bytes` in chunks and records how far it was read, to see what the verifier pulled. */
function tracked(bytes: Uint8Array, size = 16 * 1024) {
  const state = { pulled: 0, finished: false };
  async function* generate(): AsyncIterable<Uint8Array> {
    for (let offset = 0; offset < bytes.byteLength; offset += size) {
      state.pulled += 1;
      yield bytes.slice(offset, offset + size);
    }
    state.finished = true;
  }
  return { state, iterable: generate(), chunks: Math.ceil(bytes.byteLength / size) };
}

let rotating: PrivateKey;
let revoked: Record<'compromised' | 'noReason' | 'superseded' | 'retired', PrivateKey>;
let stranger: PrivateKey;
let untrusted: PrivateKey;
let shortLivedPrimary: PrivateKey;
let keyring: Keyring;

beforeAll(async () => {
  // Subkey 0: made day 0, expires day 100. Subkey 1: made day 30, never expires.
  // Subkey 2: RSA, allowed to encrypt only (its algorithm could sign, its flags say no).
  // Subkey 3: RSA signing, since EdDSA cannot be paired with a digest shorter than 256 bits.
  rotating = await makeKey({ name: 'Rotating', subkeys: [{ sign: true, keyExpirationTime: 100 * 86_400 }] });
  rotating = await rotating.addSubkey({ sign: true, date: at(30) });
  rotating = await rotating.addSubkey({ type: 'rsa', rsaBits: 2048, sign: false, date: at(1) });
  rotating = await rotating.addSubkey({ type: 'rsa', rsaBits: 2048, sign: true, date: at(1) });

  const revokedOn = async (name: string, flag: enums.reasonForRevocation) => {
    const key = await makeKey({ name });
    await revokeSubkey(key, 0, flag, at(200));
    return key;
  };
  revoked = {
    compromised: await revokedOn('Compromised', enums.reasonForRevocation.keyCompromised),
    noReason: await revokedOn('No Reason', enums.reasonForRevocation.noReason),
    superseded: await revokedOn('Superseded', enums.reasonForRevocation.keySuperseded),
    retired: await revokedOn('Retired', enums.reasonForRevocation.keyRetired),
  };
  stranger = await makeKey({ name: 'Stranger' });
  untrusted = await makeKey({ name: 'Untrusted' });
  shortLivedPrimary = await makeKey({
    name: 'Short Lived',
    keyExpirationTime: 100 * 86_400,
    subkeys: [{ sign: true, keyExpirationTime: 0 }],
  });

  const trusted = [rotating, ...Object.values(revoked), shortLivedPrimary];
  keyring = await loadKeyring(
    [...trusted, untrusted].map(publicArmor),
    trusted.map((key) => fingerprint(key)),
  );
});

describe('verifyDetached: good signatures', () => {
  it('accepts a signature over the exact bytes and names subkey, primary, time, digest and size', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 0), data, { date: at(50) });
    const result = await verifyDetached(chunksOf(data), signature, keyring, options(at(60)));
    expect(result).toEqual({
      signingKeyFingerprint: fingerprint(rotating.subkeys[0] ?? rotating),
      primaryKeyFingerprint: fingerprint(rotating),
      signatureCreated: at(50),
      hashAlgorithm: 'SHA512',
      bytes: data.byteLength,
      sha512: createHash('sha512').update(data).digest('hex'),
    });
  });

  it('gives the plain SHA-512 of the data whatever digest the signature uses', async () => {
    for (const hash of [enums.hash.sha256, enums.hash.sha384, enums.hash.sha512]) {
      const signature = await signDetached(subkeyPacket(rotating, 0), data, { date: at(50), hash });
      const result = await verifyDetached(chunksOf(data), signature, keyring, options(at(60)));
      expect(result.sha512).toBe(createHash('sha512').update(data).digest('hex'));
      const flipped = data.slice();
      flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
      await expectRefused(verifyDetached(chunksOf(flipped), signature, keyring, options(at(60))), 'tampered');
    }
  });

  it('accepts a signature over empty data (an empty file yields no chunk at all)', async () => {
    const empty = new Uint8Array(0);
    const signature = await signDetached(subkeyPacket(rotating, 1), empty, { date: at(50) });
    const result = await verifyDetached(
      chunksOf(empty),
      signature,
      keyring,
      options(at(60), { expectedBytes: 0 }),
    );
    expect(result.bytes).toBe(0);
    await expectRefused(verifyDetached(chunksOf(data), signature, keyring, options(at(60))), 'tampered');
  });

  it('accepts an armored signature as well as a binary one', async () => {
    const binary = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const armored = (await import('openpgp')).armor(enums.armor.signature, binary);
    const result = await verifyDetached(
      chunksOf(data),
      new TextEncoder().encode(armored),
      keyring,
      options(at(60)),
    );
    expect(result.signingKeyFingerprint).toBe(fingerprint(rotating.subkeys[1] ?? rotating));
  });

  it('accepts a signature made by a signing-capable primary key itself', async () => {
    const signature = await signDetached(rotating.keyPacket as SecretKeyPacket, data, { date: at(50) });
    const result = await verifyDetached(chunksOf(data), signature, keyring, options(at(60)));
    expect(result.signingKeyFingerprint).toBe(fingerprint(rotating));
    expect(result.primaryKeyFingerprint).toBe(fingerprint(rotating));
  });

  it('accepts an old signature from a subkey that has expired since (old releases stay valid)', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 0), data, { date: at(50) });
    const result = await verifyDetached(chunksOf(data), signature, keyring, options(at(4000)));
    expect(result.signatureCreated).toEqual(at(50));
  });

  it('accepts SHA-256, the weakest digest allowed', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, {
      date: at(50),
      hash: enums.hash.sha256,
    });
    const result = await verifyDetached(chunksOf(data), signature, keyring, options(at(60)));
    expect(result.hashAlgorithm).toBe('SHA256');
  });

  it('accepts a signature dated within the allowed clock skew', async () => {
    const now = at(60);
    const signature = await signDetached(subkeyPacket(rotating, 1), data, {
      date: new Date(now.getTime() + 240_000),
    });
    await expect(verifyDetached(chunksOf(data), signature, keyring, options(now))).resolves.toBeDefined();
  });

  it('reads a file through readChunks, in 1 MiB Uint8Array chunks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cldist-verify-'));
    try {
      const big = randomBytes(2.5 * 1024 * 1024, 3);
      const path = join(dir, 'artifact.bin');
      await writeFile(path, big);
      const sizes: number[] = [];
      for await (const chunk of readChunks(path)) {
        expect(chunk).toBeInstanceOf(Uint8Array);
        sizes.push(chunk.byteLength);
      }
      expect(sizes).toEqual([1 << 20, 1 << 20, big.byteLength - 2 * (1 << 20)]);
      const signature = await signDetached(subkeyPacket(rotating, 1), big, { date: at(50) });
      const result = await verifyDetached(readChunks(path), signature, keyring, options(at(60)));
      expect(result.bytes).toBe(big.byteLength);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accepts an old signature when the primary self-signature was re-issued later (as on the real CoreOS key)', async () => {
    const key = await makeKey({ name: 'Reissued' });
    const { privateKey: reformatted } = await reformatKey({
      privateKey: key,
      userIDs: [{ name: 'Reissued', email: 'reissued@example.org' }],
      date: at(500),
      format: 'object',
    });
    const user = key.users[0];
    const newer = reformatted.users[0];
    if (user === undefined || newer === undefined) {
      throw new Error('fixture key has no user ID');
    }
    user.selfCertifications = newer.selfCertifications;
    const publicKey = await readKey({ armoredKey: publicArmor(key) });
    // openpgp.js alone refuses: it wants a self-signature older than the data signature.
    await expect(publicKey.getSigningKey(publicKey.subkeys[0]?.getKeyID(), at(10))).rejects.toThrow(
      /self-signature/,
    );
    const ring = await loadKeyring([publicArmor(key)], [fingerprint(key)]);
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(10) });
    const result = await verifyDetached(chunksOf(data), signature, ring, options(at(600)));
    expect(result.signatureCreated).toEqual(at(10));
  });

  it('picks the trusted signature when a file holds several', async () => {
    const fromStranger = await signDetached(subkeyPacket(stranger, 0), data, { date: at(50) });
    const fromTrusted = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const both = new Uint8Array([...fromStranger, ...fromTrusted]);
    const result = await verifyDetached(chunksOf(data), both, keyring, options(at(60)));
    expect(result.signingKeyFingerprint).toBe(fingerprint(rotating.subkeys[1] ?? rotating));
  });
});

describe('verifyDetached: the data source', () => {
  it('pulls every chunk before it resolves', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const source = tracked(data);
    await verifyDetached(source.iterable, signature, keyring, options(at(60)));
    expect(source.state.pulled).toBe(source.chunks);
    expect(source.state.finished).toBe(true);
  });

  it('lets an error of the data source through unchanged, so a dropped download is retried', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const dropped = new TransientError('network', 'connection reset');
    async function* failing(): AsyncIterable<Uint8Array> {
      yield data.slice(0, 1000);
      yield data.slice(1000, 2000);
      throw dropped;
    }
    await expect(verifyDetached(failing(), signature, keyring, options(at(60)))).rejects.toBe(dropped);
  });

  it('lets an error on the very first read through unchanged', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const dropped = new TransientError('network', 'connection refused');
    const failing: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(dropped) }),
    };
    await expect(verifyDetached(failing, signature, keyring, options(at(60)))).rejects.toBe(dropped);
  });

  it('refuses a bad key before reading any data, so a refusal costs no download', async () => {
    const signature = await signDetached(subkeyPacket(stranger, 0), data, { date: at(50) });
    const source = tracked(data);
    await expectRefused(verifyDetached(source.iterable, signature, keyring, options(at(60))), 'unknown-key');
    expect(source.state.pulled).toBe(0);
  });
});

describe('verifyDetached: refusals', () => {
  it('refuses data with one flipped byte as tampered, after reading all of it', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const tampered = data.slice();
    tampered[123_456] = (tampered[123_456] ?? 0) ^ 0x01;
    const source = tracked(tampered);
    await expectRefused(verifyDetached(source.iterable, signature, keyring, options(at(60))), 'tampered');
    expect(source.state.finished).toBe(true);
  });

  it('refuses data with a byte appended as tampered', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const longer = new Uint8Array([...data, 0]);
    await expectRefused(verifyDetached(chunksOf(longer), signature, keyring, options(at(60))), 'tampered');
  });

  it('calls short data truncated when the expected size is known, tampered otherwise', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(50) });
    const short = data.slice(0, 150_000);
    const error = await expectRefused(
      verifyDetached(
        chunksOf(short),
        signature,
        keyring,
        options(at(60), { expectedBytes: data.byteLength }),
      ),
      'truncated',
    );
    expect(error.message).toContain(`150000 of ${data.byteLength}`);
    await expectRefused(verifyDetached(chunksOf(short), signature, keyring, options(at(60))), 'tampered');
  });

  it('refuses a signature from a key that is not in the keyring', async () => {
    const signature = await signDetached(subkeyPacket(stranger, 0), data, { date: at(50) });
    const error = await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'unknown-key',
    );
    expect(error.message).toContain(fingerprint(stranger.subkeys[0] ?? stranger));
  });

  it('refuses a signature from a key in the keyring whose primary is not trusted', async () => {
    const signature = await signDetached(subkeyPacket(untrusted, 0), data, { date: at(50) });
    await expectRefused(verifyDetached(chunksOf(data), signature, keyring, options(at(60))), 'untrusted-key');
  });

  it.each([
    ['random bytes', randomBytes(300, 11)],
    ['an empty file', new Uint8Array(0)],
    [
      'armor around garbage',
      new TextEncoder().encode(
        '-----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n-----END PGP SIGNATURE-----\n',
      ),
    ],
  ])('refuses %s as a garbage signature', async (_name, bytes) => {
    await expectRefused(verifyDetached(chunksOf(data), bytes, keyring, options(at(60))), 'garbage-signature');
  });

  it('refuses a public key offered as a signature as garbage', async () => {
    const bytes = rotating.toPublic().write();
    await expectRefused(verifyDetached(chunksOf(data), bytes, keyring, options(at(60))), 'garbage-signature');
  });

  it('refuses a text-mode signature: upstream signs binary data', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, {
      date: at(50),
      type: enums.signature.text,
    });
    await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'garbage-signature',
    );
  });

  it('refuses a signature dated beyond the allowed clock skew', async () => {
    const now = at(60);
    const signature = await signDetached(subkeyPacket(rotating, 1), data, {
      date: new Date(now.getTime() + 360_000),
    });
    await expectRefused(verifyDetached(chunksOf(data), signature, keyring, options(now)), 'future-signature');
  });

  it.each([
    ['SHA1', enums.hash.sha1],
    ['SHA224', enums.hash.sha224],
  ])('refuses a %s digest as weak', async (name, hash) => {
    const signature = await signDetached(subkeyPacket(rotating, 3), data, { date: at(50), hash });
    const error = await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'weak-hash',
    );
    expect(error.message).toContain(name);
  });

  it('refuses a signature made after the subkey expired', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 0), data, { date: at(150) });
    const error = await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(160))),
      'key-not-valid-at-signing',
    );
    expect(error.message).toContain('expired');
  });

  it('refuses a signature dated before the subkey existed', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 1), data, { date: at(10) });
    await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'key-not-valid-at-signing',
    );
  });

  it('refuses a signature by the primary key dated before the primary key existed', async () => {
    const signature = await signDetached(rotating.keyPacket as SecretKeyPacket, data, { date: at(-1) });
    await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'key-not-valid-at-signing',
    );
  });

  it('judges a subkey by the binding in force when it signed, not a later one', async () => {
    const key = await makeKey({ name: 'Rebound' });
    const { privateKey: rebound } = await reformatKey({
      privateKey: key,
      userIDs: [{ name: 'Rebound', email: 'rebound@example.org' }],
      date: at(30),
      format: 'object',
    });
    const ring = await loadKeyring([publicArmor(rebound)], [fingerprint(rebound)]);
    const before = await signDetached(subkeyPacket(rebound, 0), data, { date: at(10) });
    await expectRefused(
      verifyDetached(chunksOf(data), before, ring, options(at(60))),
      'key-not-valid-at-signing',
    );
    const after = await signDetached(subkeyPacket(rebound, 0), data, { date: at(40) });
    await expect(verifyDetached(chunksOf(data), after, ring, options(at(60)))).resolves.toBeDefined();
  });

  it('refuses a subkey bound without its own back-signature', async () => {
    const key = await makeKey({ name: 'Unconsenting' });
    await bindWithoutBackSignature(key, 0, at(0));
    const ring = await loadKeyring([publicArmor(key)], [fingerprint(key)]);
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(10) });
    const error = await expectRefused(
      verifyDetached(chunksOf(data), signature, ring, options(at(60))),
      'key-not-valid-at-signing',
    );
    expect(error.message).toContain('back-signature');
  });

  it('refuses a signature made after the primary key expired', async () => {
    const good = await signDetached(subkeyPacket(shortLivedPrimary, 0), data, { date: at(50) });
    await expect(verifyDetached(chunksOf(data), good, keyring, options(at(60)))).resolves.toBeDefined();
    const late = await signDetached(subkeyPacket(shortLivedPrimary, 0), data, { date: at(150) });
    await expectRefused(
      verifyDetached(chunksOf(data), late, keyring, options(at(160))),
      'key-not-valid-at-signing',
    );
  });

  it('refuses a signature by a subkey whose flags do not allow signing', async () => {
    const signature = await signDetached(subkeyPacket(rotating, 2), data, { date: at(50) });
    await expectRefused(
      verifyDetached(chunksOf(data), signature, keyring, options(at(60))),
      'not-signing-capable',
    );
  });
});

describe('verifyDetached: revoked subkeys', () => {
  it.each([
    ['compromised', 'compromised' as const],
    ['revoked without a reason', 'noReason' as const],
  ])('refuses every signature of a subkey revoked as %s, even one made long before', async (_name, which) => {
    const key = revoked[which];
    const before = await signDetached(subkeyPacket(key, 0), data, { date: at(50) });
    await expectRefused(
      verifyDetached(chunksOf(data), before, keyring, options(at(60))),
      'subkey-revoked-compromised',
    );
    await expectRefused(
      verifyDetached(chunksOf(data), before, keyring, options(at(300))),
      'subkey-revoked-compromised',
    );
  });

  it.each([
    ['superseded', 'superseded' as const],
    ['retired', 'retired' as const],
  ])('accepts signatures made before a subkey was %s, and refuses later ones', async (_name, which) => {
    const key = revoked[which];
    const before = await signDetached(subkeyPacket(key, 0), data, { date: at(150) });
    const result = await verifyDetached(chunksOf(data), before, keyring, options(at(300)));
    expect(result.signingKeyFingerprint).toBe(fingerprint(key.subkeys[0] ?? key));
    const after = await signDetached(subkeyPacket(key, 0), data, { date: at(250) });
    await expectRefused(
      verifyDetached(chunksOf(data), after, keyring, options(at(300))),
      'subkey-revoked-before-signing',
    );
  });

  it('ignores a revocation that was not made by the primary key', async () => {
    const key = await makeKey({ name: 'Victim' });
    const forger = await makeKey({ name: 'Forger' });
    const forged = await forger.subkeys[0]?.revoke(
      forger.keyPacket as SecretKeyPacket,
      {
        flag: enums.reasonForRevocation.keyCompromised,
      },
      at(5),
    );
    const target = key.subkeys[0];
    if (forged === undefined || target === undefined) {
      throw new Error('fixture keys have no subkey');
    }
    target.revocationSignatures.push(...forged.revocationSignatures);
    const ring = await loadKeyring([publicArmor(key)], [fingerprint(key)]);
    const signature = await signDetached(subkeyPacket(key, 0), data, { date: at(10) });
    await expect(verifyDetached(chunksOf(data), signature, ring, options(at(20)))).resolves.toBeDefined();
  });

  it('draws the line at the revocation time: signed one second before a superseding revocation is good', async () => {
    const key = revoked.superseded;
    const justBefore = await signDetached(subkeyPacket(key, 0), data, {
      date: new Date(at(200).getTime() - 1000),
    });
    await expect(
      verifyDetached(chunksOf(data), justBefore, keyring, options(at(300))),
    ).resolves.toBeDefined();
    const atRevocation = await signDetached(subkeyPacket(key, 0), data, { date: at(200) });
    await expectRefused(
      verifyDetached(chunksOf(data), atRevocation, keyring, options(at(300))),
      'subkey-revoked-before-signing',
    );
  });
});
