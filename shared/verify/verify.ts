import { createHash, type Hash } from 'node:crypto';
import {
  createMessage,
  config as defaultOpenpgpConfig,
  enums,
  readSignature,
  type Signature,
  SignaturePacket,
} from 'openpgp';
import { createStreamHasher, type StreamDigests } from './hash-thread.ts';
import { bindingAt, entryKey, type KeyEntry, type Keyring, latestBinding } from './keyring.ts';
import { SignatureError, type VerifiedSignature, type VerifyOptions } from './types.ts';

const strongHashes = new Set<enums.hash>([
  enums.hash.sha256,
  enums.hash.sha384,
  enums.hash.sha512,
  enums.hash.sha3_256,
  enums.hash.sha3_512,
]);

const softRevocations = new Set<enums.reasonForRevocation | null>([
  enums.reasonForRevocation.keySuperseded,
  enums.reasonForRevocation.keyRetired,
]);

const armorHeader = '-----BEGIN PGP SIGNATURE-----';

function hashName(algorithm: enums.hash | null): string {
  if (algorithm === null) {
    return 'none';
  }
  try {
    return enums.read(enums.hash, algorithm).toUpperCase();
  } catch {
    return `unknown (${algorithm})`;
  }
}

function looksArmored(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 200)).trimStart();
  return head.startsWith(armorHeader);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
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

interface Issuer {
  entry: KeyEntry;
  primary: KeyEntry;
  trusted: boolean;
}

function findIssuers(keyring: Keyring, packet: SignaturePacket): Issuer[] {
  const fingerprint = packet.issuerFingerprint === null ? undefined : hex(packet.issuerFingerprint);
  const keyId = packet.issuerKeyID.toHex().toUpperCase();
  const issuers: Issuer[] = [];
  for (const entry of keyring.entries.values()) {
    const matches = fingerprint !== undefined ? entry.fingerprint === fingerprint : entry.keyId === keyId;
    const primary = keyring.entries.get(entryKey(entry.primaryFingerprint, entry.primaryFingerprint));
    if (matches && primary !== undefined) {
      issuers.push({ entry, primary, trusted: keyring.trustedFingerprints.has(entry.primaryFingerprint) });
    }
  }
  return issuers.sort((a, b) => Number(b.trusted) - Number(a.trusted));
}

/** The issuer's key ID (the low 64 bits of a v4 fingerprint), as `gpg --list-keys --keyid-format long` shows it. */
function issuerKeyId(packet: SignaturePacket): string {
  return packet.issuerFingerprint === null
    ? packet.issuerKeyID.toHex().toUpperCase()
    : hex(packet.issuerFingerprint).slice(-16);
}

function issuerName(packet: SignaturePacket): string {
  return packet.issuerFingerprint === null
    ? `key ID ${packet.issuerKeyID.toHex().toUpperCase()}`
    : `fingerprint ${hex(packet.issuerFingerprint)}`;
}

function checkRevocations(issuer: Issuer, created: Date): void {
  const revoked = [
    ...issuer.primary.revocations.map((revocation) => ({ revocation, what: 'primary key' })),
    ...(issuer.entry.isPrimary
      ? []
      : issuer.entry.revocations.map((revocation) => ({ revocation, what: 'subkey' }))),
  ];
  for (const { revocation, what } of revoked) {
    if (!softRevocations.has(revocation.reason)) {
      throw new SignatureError(
        'subkey-revoked-compromised',
        `the signing ${what} of ${issuer.entry.fingerprint} was revoked on ${revocation.created.toISOString()} ` +
          `as ${revocation.reason === enums.reasonForRevocation.keyCompromised ? 'compromised' : 'revoked without a reason (treated as compromised)'}: no signature from it is trusted`,
      );
    }
  }
  for (const { revocation, what } of revoked) {
    if (created >= revocation.created) {
      throw new SignatureError(
        'subkey-revoked-before-signing',
        `the signing ${what} of ${issuer.entry.fingerprint} was retired on ${revocation.created.toISOString()}, ` +
          `before the signature was made (${created.toISOString()})`,
      );
    }
  }
}

function checkValidAt(issuer: Issuer, created: Date): void {
  const { entry, primary } = issuer;
  const notValid = (why: string): SignatureError =>
    new SignatureError(
      'key-not-valid-at-signing',
      `key ${entry.fingerprint} was not valid when the signature was made (${created.toISOString()}): ${why}`,
    );
  if (entry.created > created || primary.created > created) {
    throw notValid(`the key was created later, on ${entry.created.toISOString()}`);
  }
  const binding = entry.isPrimary ? latestBinding(entry) : bindingAt(entry, created);
  if (binding === undefined) {
    throw notValid('no valid binding signature from its primary key was made by then');
  }
  if (!entry.algorithmCanSign || !binding.flagsAllowSigning) {
    throw new SignatureError(
      'not-signing-capable',
      `key ${entry.fingerprint} is not allowed to sign data (its ${entry.algorithmCanSign ? 'key flags' : 'algorithm'} forbid it)`,
    );
  }
  if (binding.expires !== undefined && binding.expires <= created) {
    throw notValid(`it expired on ${binding.expires.toISOString()}`);
  }
  if (!binding.backSigned) {
    throw notValid('the subkey has no valid back-signature binding it to its primary key');
  }
  const primaryBinding = latestBinding(primary);
  if (primaryBinding === undefined) {
    throw notValid(`its primary key ${primary.fingerprint} has no valid self-signature`);
  }
  if (primaryBinding.expires !== undefined && primaryBinding.expires <= created) {
    throw notValid(`its primary key expired on ${primaryBinding.expires.toISOString()}`);
  }
}

interface PullSource {
  stream: ReadableStream<Uint8Array>;
  bytes: () => number;
  failure: () => { error: unknown } | undefined;
}

function pullFrom(data: AsyncIterable<Uint8Array>, tap: Hash): PullSource {
  const iterator = data[Symbol.asyncIterator]();
  let bytes = 0;
  let failure: { error: unknown } | undefined;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await iterator.next();
        } catch (error) {
          failure = { error };
          controller.error(error);
          return;
        }
        if (step.done) {
          controller.close();
          return;
        }
        if (!(step.value instanceof Uint8Array)) {
          const error = new TypeError('verifyDetached: the data iterable must yield Uint8Array chunks');
          failure = { error };
          controller.error(error);
          return;
        }
        if (step.value.byteLength > 0) {
          bytes += step.value.byteLength;
          tap.update(step.value);
          controller.enqueue(step.value);
          return;
        }
      }
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
  return { stream, bytes: () => bytes, failure: () => failure };
}

interface StreamResult {
  bytes: number;
  sha512: string;
}

const openpgpConfig = {
  ...defaultOpenpgpConfig,
  rejectHashAlgorithms: new Set<enums.hash>(),
  rejectMessageHashAlgorithms: new Set<enums.hash>(),
};

/** With `hashed` set, openpgp.js never reads the data argument; it only has to be of the right type. */
const noData = new Uint8Array(0);

const nodeHashNames = new Map<enums.hash, string>([
  [enums.hash.sha256, 'sha256'],
  [enums.hash.sha384, 'sha384'],
  [enums.hash.sha512, 'sha512'],
  [enums.hash.sha3_256, 'sha3-256'],
  [enums.hash.sha3_512, 'sha3-512'],
]);

function refusal(cause: unknown, issuer: Issuer, bytes: number, options: VerifyOptions): SignatureError {
  const message = (cause as Error).message;
  if (/digest did not match|verification failed/i.test(message)) {
    if (options.expectedBytes !== undefined && bytes < options.expectedBytes) {
      return new SignatureError(
        'truncated',
        `only ${bytes} of ${options.expectedBytes} bytes arrived, and the signature does not match them`,
        { cause },
      );
    }
    return new SignatureError(
      'tampered',
      `the data does not match the signature by ${issuer.entry.fingerprint} (${bytes} bytes checked)`,
      { cause },
    );
  }
  return new SignatureError('garbage-signature', `the signature cannot be accepted: ${message}`, { cause });
}

/**
 * The mirror needs the file's plain SHA-512 as well as the signature check, and on two cores a second
 * hashing pass costs real throughput (`npm run bench:verify`). For v4 signatures (all of upstream's) the
 * signed digest is hash(data ‖ hashed subpackets ‖ trailer), so one native hash over the data is copied
 * for the plain digest and then finished for the signature; openpgp.js does only the public-key step on it
 * (through its internal `hashed` field, which test/unit/openpgp-seam.test.ts holds in place with the exact
 * pin in package.json), and gets no chance to read the data twice.
 */
async function verifyStreamHashOnce(
  packet: SignaturePacket,
  issuer: Issuer,
  created: Date,
  data: AsyncIterable<Uint8Array>,
  options: VerifyOptions,
  hashName: string,
): Promise<StreamResult> {
  const hasher = createStreamHasher(hashName);
  let bytes = 0;
  let digests: StreamDigests;
  try {
    const iterator = data[Symbol.asyncIterator]();
    for (;;) {
      const step = await iterator.next();
      if (step.done) break;
      if (!(step.value instanceof Uint8Array)) {
        throw new TypeError('verifyDetached: the data iterable must yield Uint8Array chunks');
      }
      bytes += step.value.byteLength;
      await hasher.update(step.value);
    }
    const hashedArea = packet.signatureData as Uint8Array;
    const trailer = new Uint8Array(6);
    trailer[0] = packet.version;
    trailer[1] = 0xff;
    new DataView(trailer.buffer).setUint32(2, hashedArea.byteLength);
    digests = await hasher.finish([hashedArea, trailer]);
  } finally {
    hasher.cancel();
  }
  const { sha512, digest } = digests;
  const seam = packet as SignaturePacket & { hashed?: Promise<Uint8Array> };
  seam.hashed = Promise.resolve(digest);
  try {
    await packet.verify(issuer.entry.packet, enums.signature.binary, noData, created, true, openpgpConfig);
  } catch (cause) {
    throw refusal(cause, issuer, bytes, options);
  }
  return { bytes, sha512 };
}

async function verifyStream(
  packet: SignaturePacket,
  issuer: Issuer,
  created: Date,
  data: AsyncIterable<Uint8Array>,
  options: VerifyOptions,
): Promise<StreamResult> {
  const hashName = packet.hashAlgorithm === null ? undefined : nodeHashNames.get(packet.hashAlgorithm);
  if (packet.version === 4 && hashName !== undefined && packet.signatureData instanceof Uint8Array) {
    return verifyStreamHashOnce(packet, issuer, created, data, options, hashName);
  }
  const tap = createHash('sha512');
  const source = pullFrom(data, tap);
  const message = await createMessage({ binary: source.stream });
  const literal = message.packets.findPacket(enums.packet.literalData) ?? {};
  // openpgp.js hashes a passive clone of the literal data: it only flows while the original is read.
  const verification = packet.verify(
    issuer.entry.packet,
    enums.signature.binary,
    literal,
    created,
    true,
    openpgpConfig,
  );
  verification.catch(() => undefined);
  try {
    const original = message.getLiteralData();
    if (original instanceof ReadableStream) {
      const reader = original.getReader();
      for (;;) {
        const { done } = await reader.read();
        if (done) {
          break;
        }
      }
    }
    await verification;
  } catch (cause) {
    const failed = source.failure();
    if (failed !== undefined) {
      throw failed.error;
    }
    throw refusal(cause, issuer, source.bytes(), options);
  }
  return { bytes: source.bytes(), sha512: tap.digest('hex') };
}

function pickPacket(keyring: Keyring, packets: SignaturePacket[]): SignaturePacket {
  const trusted = packets.find((packet) => findIssuers(keyring, packet).some((issuer) => issuer.trusted));
  return trusted ?? (packets[0] as SignaturePacket);
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
