import { enums, readSignature, type Signature, SignaturePacket } from 'openpgp';
import type { Keyring } from './keyring.ts';
import { verifyStream } from './signature-stream.ts';
import {
  checkRevocations,
  checkValidAt,
  findIssuers,
  hashName,
  issuerKeyId,
  issuerName,
  pickPacket,
} from './trust-rules.ts';
import { SignatureError, type VerifiedSignature, type VerifyOptions } from './types.ts';

const strongHashes = new Set<enums.hash>([
  enums.hash.sha256,
  enums.hash.sha384,
  enums.hash.sha512,
  enums.hash.sha3_256,
  enums.hash.sha3_512,
]);

const armorHeader = '-----BEGIN PGP SIGNATURE-----';

function looksArmored(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 200)).trimStart();
  return head.startsWith(armorHeader);
}

const unreadableSignature =
  'the signature file is not an OpenPGP signature, binary or ASCII-armored: download the .sig again, ' +
  'or check that it belongs to this file';

async function readSignaturePackets(bytes: Uint8Array): Promise<SignaturePacket[]> {
  let signature: Signature;
  try {
    signature = looksArmored(bytes)
      ? await readSignature({ armoredSignature: new TextDecoder().decode(bytes) })
      : await readSignature({ binarySignature: bytes });
  } catch {
    // The parser's own words (packet tags, partial lengths) tell an operator nothing; the remedy is the same.
    throw new SignatureError('garbage-signature', unreadableSignature);
  }
  const packets = signature.packets.filter((packet) => packet instanceof SignaturePacket);
  if (packets.length === 0) {
    throw new SignatureError('garbage-signature', 'the signature file holds no OpenPGP signature packet');
  }
  return packets;
}

/**
 * Upstream signs every artifact with a detached binary signature; an artifact is only ever stored
 * once this resolves. Every trust rule is checked before the data is read, so a bad key costs no
 * download, and each refusal carries its own reason for alerts. The data is pulled chunk by chunk,
 * so memory stays flat whatever the size, and errors of the source (a dropped connection) come out
 * unchanged so the caller can retry them.
 */
export async function verifyDetached(
  data: AsyncIterable<Uint8Array>,
  signature: Uint8Array,
  keyring: Keyring,
  options: VerifyOptions,
): Promise<VerifiedSignature> {
  const packet = pickPacket(keyring, await readSignaturePackets(signature));
  const created = packet.created;
  if (created === null) {
    throw new SignatureError('garbage-signature', 'the signature has no creation time');
  }
  if (packet.signatureType !== enums.signature.binary) {
    throw new SignatureError(
      'garbage-signature',
      `the signature is of type 0x${(packet.signatureType ?? 0).toString(16)}, not a signature over binary data (0x0)`,
    );
  }
  if (packet.hashAlgorithm === null || !strongHashes.has(packet.hashAlgorithm)) {
    throw new SignatureError(
      'weak-hash',
      `the signature uses the ${hashName(packet.hashAlgorithm)} digest; SHA-256 or stronger is required`,
    );
  }
  const latestAllowed = options.now.getTime() + options.maxClockSkewSeconds * 1000;
  if (created.getTime() > latestAllowed) {
    throw new SignatureError(
      'future-signature',
      `the signature is dated ${created.toISOString()}, more than ${options.maxClockSkewSeconds} s after now (${options.now.toISOString()})`,
    );
  }
  const issuer = findIssuers(keyring, packet)[0];
  if (issuer === undefined) {
    throw new SignatureError(
      'unknown-key',
      `the signature was made by ${issuerName(packet)}, which is not in the keyring`,
      { issuer: issuerKeyId(packet) },
    );
  }
  if (!issuer.trusted) {
    throw new SignatureError(
      'untrusted-key',
      `the signature was made by ${issuer.entry.fingerprint} of primary key ${issuer.primary.fingerprint}, which is not a trusted primary`,
    );
  }
  checkRevocations(issuer, created);
  checkValidAt(issuer, created);
  const { bytes, sha512 } = await verifyStream(packet, issuer, created, data, options);
  return {
    signingKeyFingerprint: issuer.entry.fingerprint,
    primaryKeyFingerprint: issuer.primary.fingerprint,
    signatureCreated: created,
    hashAlgorithm: hashName(packet.hashAlgorithm),
    bytes,
    sha512,
  };
}
