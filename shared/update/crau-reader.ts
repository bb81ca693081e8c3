import { createHash, type Hash } from 'node:crypto';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { CrauFormatError } from './errors.ts';

/**
 * A streaming reader of the CrAU update payload format, as published with update_engine
 * (`update_metadata.proto` and the payload description of Chromium OS's update_engine, which Flatcar's
 * update_engine and ue-rs read):
 *
 *     "CrAU" | u64 BE format version (1) | u64 BE manifest size | DeltaArchiveManifest | data blobs | Signatures
 *
 * The manifest's `signatures_offset` (field 4) and `signatures_size` (field 5) place the Signatures blob,
 * counted from the end of the manifest. The signed hash is the SHA-256 of every byte before that blob.
 * The reader sees each byte once, keeps only the header, the manifest and the blob, and computes the
 * whole file's SHA-1 and SHA-256 (what an Omaha answer names) in the same pass.
 */

const magic = [0x43, 0x72, 0x41, 0x55]; // "CrAU"
export const crauHeaderBytes = 4 + 8 + 8;
export const crauFormatVersion = 1n;
/** Far above a full Flatcar payload's manifest; a larger one is refused before it is buffered. */
export const maxManifestBytes = 16 * 1024 * 1024;
/** Room for a few RSA-4096 signatures; a larger blob is refused before it is buffered. */
export const maxSignatureBlobBytes = 64 * 1024;
/** Production payloads carry two signatures (one per signing key generation); more is not a payload. */
export const maxSignatures = 16;

const manifestFields = { signaturesOffset: 4, signaturesSize: 5 } as const;
const signaturesFields = { signature: 1 } as const;
const signatureFields = { version: 1, data: 2 } as const;

export interface CrauManifestFacts {
  /** Offset of the Signatures blob from the end of the manifest. */
  signaturesOffset: number;
  signaturesSize: number;
}

export interface CrauSignature {
  /** The blob's own numbering of its signatures; informational, not checked. */
  version?: number;
  data: Uint8Array;
}

export interface CrauFacts {
  size: number;
  sha1: Buffer;
  sha256: Buffer;
  /** SHA-256 of the bytes before the Signatures blob: what each signature signs. */
  signedSha256: Buffer;
  manifestSize: number;
  manifest: CrauManifestFacts;
  signatures: CrauSignature[];
}

function safeNumber(value: bigint | string, field: string): number {
  const big = BigInt(value);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CrauFormatError(`the manifest's ${field} (${big}) is beyond any payload size`);
  }
  return Number(big);
}

/** Runs a protobuf read, turning the runtime's own errors (premature end, bad varint) into a refusal. */
function decoding<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof CrauFormatError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new CrauFormatError(`the ${what} is not a valid protobuf message: ${detail}`, 'crau-format', {
      cause: error,
    });
  }
}

function expectWireType(actual: WireType, expected: WireType, field: string): void {
  if (actual !== expected) {
    throw new CrauFormatError(`the manifest's ${field} has wire type ${actual}, not ${expected}`);
  }
}

/**
 * Reads what verification needs of a DeltaArchiveManifest: where the Signatures blob is. Every other field
 * (install operations, partition info) is skipped by wire type, so newer manifests read the same.
 */
export function parseCrauManifest(bytes: Uint8Array): CrauManifestFacts {
  return decoding('manifest', () => {
    const reader = new BinaryReader(bytes);
    let offset: number | undefined;
    let size: number | undefined;
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === manifestFields.signaturesOffset) {
        expectWireType(wireType, WireType.Varint, 'signatures_offset');
        offset = safeNumber(reader.uint64(), 'signatures_offset');
      } else if (field === manifestFields.signaturesSize) {
        expectWireType(wireType, WireType.Varint, 'signatures_size');
        size = safeNumber(reader.uint64(), 'signatures_size');
      } else {
        reader.skip(wireType, field);
      }
    }
    if (offset === undefined || size === undefined) {
      throw new CrauFormatError(
        'the manifest names no signatures_offset and signatures_size: the payload is unsigned',
      );
    }
    if (size === 0 || size > maxSignatureBlobBytes) {
      throw new CrauFormatError(
        `the manifest's signatures_size is ${size} bytes; a Signatures blob takes 1 to ${maxSignatureBlobBytes}`,
      );
    }
    return { signaturesOffset: offset, signaturesSize: size };
  });
}

function parseSignature(bytes: Uint8Array): CrauSignature {
  const reader = new BinaryReader(bytes);
  let version: number | undefined;
  let data: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === signatureFields.version && wireType === WireType.Varint) {
      version = reader.uint32();
    } else if (field === signatureFields.data && wireType === WireType.LengthDelimited) {
      data = reader.bytes();
    } else {
      reader.skip(wireType, field);
    }
  }
  if (data === undefined || data.byteLength === 0) {
    throw new CrauFormatError('a signature in the Signatures blob has no data');
  }
  return version === undefined ? { data } : { version, data };
}

/** Reads the Signatures blob: `repeated Signature signatures = 1`, each `{ version = 1, data = 2 }`. */
export function parseCrauSignatures(bytes: Uint8Array): CrauSignature[] {
  return decoding('Signatures blob', () => {
    const reader = new BinaryReader(bytes);
    const signatures: CrauSignature[] = [];
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === signaturesFields.signature && wireType === WireType.LengthDelimited) {
        if (signatures.length === maxSignatures) {
          throw new CrauFormatError(`the Signatures blob holds more than ${maxSignatures} signatures`);
        }
        signatures.push(parseSignature(reader.bytes()));
      } else {
        reader.skip(wireType, field);
      }
    }
    if (signatures.length === 0) throw new CrauFormatError('the Signatures blob holds no signature');
    return signatures;
  });
}

function readU64(bytes: Uint8Array, at: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at, false);
}

type Phase = 'header' | 'manifest' | 'body';

/**
 * Feed it the payload's bytes in order with `update`, then call `finish`. A payload that cannot be valid
 * (wrong magic, unsupported version, oversized manifest, bytes past the signature blob) throws from
 * `update` as soon as that shows, so a bad download stops early.
 */
export class CrauStreamReader {
  private phase: Phase = 'header';
  private readonly header = new Uint8Array(crauHeaderBytes);
  private manifestBytes: Uint8Array = new Uint8Array(0);
  private manifestSize = 0;
  private manifest: CrauManifestFacts | undefined;
  /** Absolute offsets of the Signatures blob, once the manifest is read. */
  private blobStart = Number.POSITIVE_INFINITY;
  private blobEnd = Number.POSITIVE_INFINITY;
  private blob: Uint8Array = new Uint8Array(0);
  private position = 0;
  private readonly sha1: Hash = createHash('sha1');
  private readonly sha256: Hash = createHash('sha256');
  private signedSha256: Buffer | undefined;

  /** Bytes read so far. */
  get bytesRead(): number {
    return this.position;
  }

  update(chunk: Uint8Array): void {
    const start = this.position;
    let offset = 0;
    while (offset < chunk.byteLength) {
      offset += this.consume(chunk, offset, start + offset);
    }
    this.position = start + chunk.byteLength;
    this.sha1.update(chunk);
    const cut = this.blobStart - start;
    if (this.signedSha256 === undefined && cut <= chunk.byteLength) {
      this.sha256.update(chunk.subarray(0, cut));
      this.signedSha256 = this.sha256.copy().digest();
      this.sha256.update(chunk.subarray(cut));
    } else {
      this.sha256.update(chunk);
    }
  }

  /** Consumes bytes of `chunk` from `offset` (absolute `at`) for the current phase; returns how many. */
  private consume(chunk: Uint8Array, offset: number, at: number): number {
    if (this.phase === 'header') {
      const take = Math.min(crauHeaderBytes - at, chunk.byteLength - offset);
      this.header.set(chunk.subarray(offset, offset + take), at);
      if (at + take === crauHeaderBytes) this.readHeader();
      return take;
    }
    if (this.phase === 'manifest') {
      const within = at - crauHeaderBytes;
      const take = Math.min(this.manifestSize - within, chunk.byteLength - offset);
      this.manifestBytes.set(chunk.subarray(offset, offset + take), within);
      if (within + take === this.manifestSize) this.readManifest();
      return take;
    }
    const end = at + (chunk.byteLength - offset);
    if (end > this.blobEnd) {
      throw new CrauFormatError(
        `the payload goes on past its Signatures blob, which ends at byte ${this.blobEnd}: bytes no signature covers`,
        'crau-trailing-data',
      );
    }
    if (end > this.blobStart) {
      const from = Math.max(at, this.blobStart);
      this.blob.set(chunk.subarray(offset + (from - at), chunk.byteLength), from - this.blobStart);
    }
    return chunk.byteLength - offset;
  }

  private readHeader(): void {
    const found = this.header.subarray(0, 4);
    if (!magic.every((byte, index) => found[index] === byte)) {
      const shown = Buffer.from(found).toString('hex');
      throw new CrauFormatError(`the payload starts with 0x${shown}, not the CrAU magic (0x43724155)`);
    }
    const version = readU64(this.header, 4);
    if (version !== crauFormatVersion) {
      throw new CrauFormatError(
        `the payload is CrAU format version ${version}; this verifier reads version ${crauFormatVersion}, which Flatcar publishes`,
      );
    }
    const size = readU64(this.header, 12);
    if (size === 0n || size > BigInt(maxManifestBytes)) {
      throw new CrauFormatError(
        `the manifest size is ${size} bytes; a manifest takes 1 to ${maxManifestBytes} bytes`,
      );
    }
    this.manifestSize = Number(size);
    this.manifestBytes = new Uint8Array(this.manifestSize);
    this.phase = 'manifest';
  }

  private readManifest(): void {
    const manifest = parseCrauManifest(this.manifestBytes);
    this.manifest = manifest;
    this.blobStart = crauHeaderBytes + this.manifestSize + manifest.signaturesOffset;
    this.blobEnd = this.blobStart + manifest.signaturesSize;
    this.blob = new Uint8Array(manifest.signaturesSize);
    this.phase = 'body';
  }

  /** The facts of a complete payload; throws CrauFormatError for one that ended early. */
  finish(): CrauFacts {
    const size = this.position;
    const manifest = this.manifest;
    if (manifest === undefined) {
      const where = this.phase === 'header' ? 'header' : 'manifest';
      throw new CrauFormatError(
        `the payload ends after ${size} bytes, inside its ${where}`,
        'crau-truncated',
      );
    }
    if (size < this.blobEnd || this.signedSha256 === undefined) {
      throw new CrauFormatError(
        `the payload ends after ${size} bytes; its manifest places the Signatures blob up to byte ${this.blobEnd}`,
        'crau-truncated',
      );
    }
    return {
      size,
      sha1: this.sha1.digest(),
      sha256: this.sha256.digest(),
      signedSha256: this.signedSha256,
      manifestSize: this.manifestSize,
      manifest,
      signatures: parseCrauSignatures(this.blob),
    };
  }
}

/** Reads a whole payload held in memory: for the CLI, tests and the bad-input corpus. */
export function readCrau(bytes: Uint8Array, chunkSize = 1024 * 1024): CrauFacts {
  const reader = new CrauStreamReader();
  for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
    reader.update(bytes.subarray(offset, offset + chunkSize));
  }
  return reader.finish();
}
