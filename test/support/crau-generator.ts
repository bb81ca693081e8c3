import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/**
 * Test-only: CrAU update payloads built from the format's published description (update_engine's
 * `update_metadata.proto` and payload layout), signed with a test RSA key. Not a payload generator for
 * real use: one REPLACE operation over random data, enough for the verifier to meet the real structure.
 *
 *     "CrAU" | u64 BE version 1 | u64 BE manifest size | DeltaArchiveManifest | data | Signatures
 */

export interface TestKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicPem: string;
}

export function testPayloadKey(bits = 2048): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export interface CrauOptions {
  /** The data blobs: bytes as given, or this many random bytes. Default 64 KiB. */
  data?: Uint8Array | number;
  /** One signature per key, in order (a production payload carries two). */
  signers: KeyObject[];
  /** Tampering applied after signing, each what a broken origin or an attacker could serve. */
  tamper?: {
    /** Flip the byte at this offset of the data blobs. */
    flipDataByte?: number;
    /** Keep only this many bytes of the whole file. */
    truncateTo?: number;
    /** Replace the Signatures blob with bytes of the same length that are not a Signatures message. */
    garbageSignatureBlob?: boolean;
    /** Flip the last byte of each signature (the blob still parses). */
    flipSignatureByte?: boolean;
    /** Append bytes after the Signatures blob. */
    trailing?: Uint8Array;
    /** Write another value in the header's version field. */
    formatVersion?: bigint;
  };
}

export interface CrauPayload {
  bytes: Uint8Array;
  /** SHA-256 of the signed range, as the verifier should compute it. */
  signedSha256: Buffer;
  manifestSize: number;
}

function manifest(dataLength: number, signaturesOffset: number, signaturesSize: number): Uint8Array {
  const blockSize = 4096;
  const w = new BinaryWriter();
  // partition_operations (1): one REPLACE (type 0) of the data blob into block 0.
  w.tag(1, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).uint32(0);
  w.tag(2, WireType.Varint).uint32(0);
  w.tag(3, WireType.Varint).uint32(dataLength);
  w.tag(6, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).uint64(0);
  w.tag(2, WireType.Varint).uint64(Math.ceil(dataLength / blockSize));
  w.join();
  w.join();
  w.tag(3, WireType.Varint).uint32(blockSize);
  w.tag(4, WireType.Varint).uint64(signaturesOffset);
  w.tag(5, WireType.Varint).uint64(signaturesSize);
  // new_partition_info (9): size and hash of the installed image.
  w.tag(9, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).uint64(dataLength);
  w.tag(2, WireType.LengthDelimited).bytes(createHash('sha256').update('image').digest());
  w.join();
  return w.finish();
}

/** `Signatures { repeated Signature signatures = 1 }`, `Signature { uint32 version = 1; bytes data = 2 }`. */
export function signaturesBlob(signatures: readonly Uint8Array[]): Uint8Array {
  const w = new BinaryWriter();
  for (const [index, data] of signatures.entries()) {
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.Varint).uint32(index + 1);
    w.tag(2, WireType.LengthDelimited).bytes(data);
    w.join();
  }
  return w.finish();
}

function header(version: bigint, manifestSize: number): Uint8Array {
  const bytes = new Uint8Array(20);
  bytes.set([0x43, 0x72, 0x41, 0x55]);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(4, version, false);
  view.setBigUint64(12, BigInt(manifestSize), false);
  return bytes;
}

/** Builds a signed payload; the signatures cover everything before the Signatures blob. */
export function buildCrauPayload(options: CrauOptions): CrauPayload {
  const data =
    typeof options.data === 'number' || options.data === undefined
      ? new Uint8Array(randomBytes(options.data ?? 64 * 1024))
      : options.data;
  // Signature lengths are the modulus lengths, so the blob's size is known before anything is signed.
  const placeholder = signaturesBlob(
    options.signers.map((key) => new Uint8Array((key.asymmetricKeyDetails?.modulusLength ?? 2048) / 8)),
  );
  const manifestBytes = manifest(data.byteLength, data.byteLength, placeholder.byteLength);
  const signed = Buffer.concat([header(1n, manifestBytes.byteLength), manifestBytes, data]);
  const signedSha256 = createHash('sha256').update(signed).digest();
  const signatures = options.signers.map((key) => new Uint8Array(sign('sha256', signed, key)));
  const tamper = options.tamper ?? {};
  if (tamper.flipSignatureByte) {
    for (const signature of signatures) {
      signature[signature.byteLength - 1] = (signature[signature.byteLength - 1] ?? 0) ^ 0x01;
    }
  }
  let blob = signaturesBlob(signatures);
  if (blob.byteLength !== placeholder.byteLength) throw new Error('signature blob changed size');
  if (tamper.garbageSignatureBlob) blob = new Uint8Array(blob.byteLength).fill(0xff);
  let bytes = new Uint8Array(Buffer.concat([signed, blob, tamper.trailing ?? new Uint8Array(0)]));
  if (tamper.formatVersion !== undefined) {
    new DataView(bytes.buffer).setBigUint64(4, tamper.formatVersion, false);
  }
  if (tamper.flipDataByte !== undefined) {
    const at = 20 + manifestBytes.byteLength + tamper.flipDataByte;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  }
  if (tamper.truncateTo !== undefined) bytes = bytes.slice(0, tamper.truncateTo);
  return { bytes, signedSha256, manifestSize: manifestBytes.byteLength };
}
