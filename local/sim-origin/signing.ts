import { createHash, type Hash } from 'node:crypto';
import * as openpgp from 'openpgp';

export type SimKeyType = 'curve25519' | 'rsa4096';

export interface SimSigningKey {
  privateKey: openpgp.PrivateKey;
  publicKeyArmored: string;
  /** Upper-case hex, the value a keyring's trusted fingerprints list takes. */
  primaryFingerprint: string;
  /** The signing subkey that makes every signature, like the upstream keys. */
  signingKeyFingerprint: string;
}

const signConfig = { preferredHashAlgorithm: openpgp.enums.hash.sha512 };

/**
 * A fresh key shaped like the upstream image signing keys: a certify-only primary and one signing subkey.
 * Curve25519 (legacy EdDSA, readable by gpg 2.2) is quick to generate; RSA-4096 matches the real keys for
 * benchmarks.
 */
export async function generateSimKey(type: SimKeyType = 'curve25519'): Promise<SimSigningKey> {
  const algorithm =
    type === 'rsa4096'
      ? ({ type: 'rsa', rsaBits: 4096 } as const)
      : ({ type: 'ecc', curve: 'curve25519Legacy' } as const);
  const { privateKey } = await openpgp.generateKey({
    ...algorithm,
    userIDs: [{ name: 'cldist sim origin signing key', email: 'sim-origin@cldist.invalid' }],
    subkeys: [{ ...algorithm, sign: true }],
    format: 'object',
  });
  return describeKey(privateKey);
}

/** Use a given (unencrypted) private key, e.g. one with an expired or revoked subkey for failure tests. */
export async function readSimKey(armoredPrivateKey: string): Promise<SimSigningKey> {
  return describeKey(await openpgp.readPrivateKey({ armoredKey: armoredPrivateKey }));
}

async function describeKey(privateKey: openpgp.PrivateKey): Promise<SimSigningKey> {
  const signing = await privateKey.getSigningKey();
  return {
    privateKey,
    publicKeyArmored: privateKey.toPublic().armor(),
    primaryFingerprint: privateKey.getFingerprint().toUpperCase(),
    signingKeyFingerprint: signing.getFingerprint().toUpperCase(),
  };
}

export interface SignedDigests {
  signature: Uint8Array;
  md5: string;
  sha1: string;
  sha512: string;
  size: number;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

/**
 * One pass over the bytes gives the detached binary signature and the MD5/SHA-1/SHA-512 sums of the
 * `.DIGESTS` file, so publishing a large artifact reads its generator once.
 */
export async function signChunks(
  key: SimSigningKey,
  chunks: Iterable<Uint8Array>,
  date?: Date,
  signingSubkey?: string,
): Promise<SignedDigests> {
  const hashes: Hash[] = [createHash('md5'), createHash('sha1'), createHash('sha512')];
  const iterator = chunks[Symbol.iterator]();
  let size = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = iterator.next();
      if (next.done) {
        controller.close();
        return;
      }
      size += next.value.byteLength;
      for (const hash of hashes) {
        hash.update(next.value);
      }
      controller.enqueue(next.value);
    },
  });
  const message = await openpgp.createMessage({ binary: source });
  const signed = await openpgp.sign({
    message,
    signingKeys: key.privateKey,
    detached: true,
    format: 'binary',
    config: signConfig,
    ...(date === undefined ? {} : { date }),
    ...(signingSubkey === undefined ? {} : { signingKeyIDs: [subkeyId(key, signingSubkey)] }),
  });
  const signature = await readAll(signed as ReadableStream<Uint8Array>);
  const [md5, sha1, sha512] = hashes.map((hash) => hash.digest('hex'));
  return { signature, md5: md5 ?? '', sha1: sha1 ?? '', sha512: sha512 ?? '', size };
}

/** The key ID of one of the key's subkeys, named by fingerprint: a rotation signs with the new subkey only. */
function subkeyId(key: SimSigningKey, fingerprint: string): openpgp.KeyID {
  const subkey = key.privateKey.subkeys.find(
    (s) => s.getFingerprint().toUpperCase() === fingerprint.toUpperCase(),
  );
  if (subkey === undefined) throw new Error(`sim origin: the signing key has no subkey ${fingerprint}`);
  return subkey.getKeyID();
}

/** The upstream `X.DIGESTS` text (as written by the Gentoo catalyst tooling Flatcar uses). */
export function digestsText(name: string, sums: { md5: string; sha1: string; sha512: string }): string {
  return `# MD5 HASH\n${sums.md5}  ${name}\n# SHA1 HASH\n${sums.sha1}  ${name}\n# SHA512 HASH\n${sums.sha512}  ${name}\n`;
}
