import {
  constants,
  createHash,
  createPublicKey,
  type KeyObject,
  publicDecrypt,
  timingSafeEqual,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolveProjectPath } from '../config.ts';
import { ConfigError } from '../errors.ts';
import type { CrauFacts, CrauSignature } from './crau-reader.ts';
import { CrauSignatureError } from './errors.ts';

/** One trusted update payload key. */
export interface UpdatePayloadKey {
  /** Where it came from, for logs: the configured path. */
  source: string;
  /** SHA-256 of the key's SubjectPublicKeyInfo (DER), hex: names the key in logs and records. */
  fingerprint: string;
  key: KeyObject;
  /** Modulus length in bytes: every signature by this key has exactly this length. */
  modulusBytes: number;
}

/**
 * Parses PEM public keys. Each must be RSA, as update_engine's payload check is RSA PKCS#1 v1.5 over
 * SHA-256; `field` names the config field in the error (`update.payloadKeys.0`).
 */
export function parseUpdatePayloadKey(pem: string, source: string, field: string): UpdatePayloadKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new ConfigError(`${field}: ${source} is not a PEM public key`, { cause });
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined) {
    throw new ConfigError(
      `${field}: ${source} is a ${key.asymmetricKeyType ?? 'unknown'} key; update payloads are signed with RSA`,
    );
  }
  if (bits < 2048) {
    throw new ConfigError(`${field}: ${source} is a ${bits}-bit RSA key; at least 2048 bits are required`);
  }
  const der = key.export({ type: 'spki', format: 'der' });
  return {
    source,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    key,
    modulusBytes: Math.ceil(bits / 8),
  };
}

/** Reads `update.payloadKeys` once at start; relative paths are taken from the project root. */
export function loadUpdatePayloadKeys(paths: readonly string[]): UpdatePayloadKey[] {
  return paths.map((path, index) => {
    const field = `update.payloadKeys.${index}`;
    let pem: string;
    try {
      pem = readFileSync(resolveProjectPath(path), 'utf8');
    } catch (cause) {
      throw new ConfigError(`${field}: cannot read ${path}; name an existing PEM public key file`, { cause });
    }
    return parseUpdatePayloadKey(pem, path, field);
  });
}

/** DER prefix of the DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1). */
const sha256DigestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** EMSA-PKCS1-v1_5 encoding of a SHA-256 digest for a modulus of `length` bytes (RFC 8017, 9.2). */
function encodedDigest(digest: Buffer, length: number): Buffer | undefined {
  const t = Buffer.concat([sha256DigestInfo, digest]);
  const padding = length - t.length - 3;
  if (padding < 8) return undefined;
  return Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(padding, 0xff), Buffer.from([0x00]), t]);
}

/**
 * RSASSA-PKCS1-v1_5 verification of a digest computed elsewhere (the streaming pass). Node verifies only
 * data it hashes itself, so the signature is opened with the raw public operation and compared, in
 * constant time, with the one valid encoding of the digest: no padding is parsed, none can be forged.
 */
function signatureMatches(signature: Uint8Array, digest: Buffer, key: UpdatePayloadKey): boolean {
  if (signature.byteLength !== key.modulusBytes) return false;
  const expected = encodedDigest(digest, key.modulusBytes);
  if (expected === undefined) return false;
  let opened: Buffer;
  try {
    opened = publicDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return false;
  }
  return opened.byteLength === expected.byteLength && timingSafeEqual(opened, expected);
}

export interface VerifiedCrau {
  /** The key that verified a signature. */
  key: UpdatePayloadKey;
  /** Position of the verifying signature in the blob. */
  signatureIndex: number;
}

/**
 * Accepts the payload when one of its signatures verifies the signed hash with one of the keys, as
 * update_engine does: production payloads carry a signature per key generation, and only one needs to be
 * by a key the instance (here, the mirror) trusts.
 */
export function verifyCrauSignatures(
  facts: Pick<CrauFacts, 'signedSha256' | 'signatures'>,
  keys: readonly UpdatePayloadKey[],
): VerifiedCrau {
  const signatures: readonly CrauSignature[] = facts.signatures;
  for (const [signatureIndex, signature] of signatures.entries()) {
    for (const key of keys) {
      if (signatureMatches(signature.data, facts.signedSha256, key)) return { key, signatureIndex };
    }
  }
  const lengths = signatures.map((s) => s.data.byteLength).join(', ');
  throw new CrauSignatureError(
    `none of its ${signatures.length} signature(s) (${lengths} bytes) verifies with the ${keys.length} configured update payload key(s) (${keys.map((k) => k.source).join(', ')})`,
  );
}
