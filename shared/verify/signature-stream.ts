import { createHash, type Hash } from 'node:crypto';
import { createMessage, config as defaultOpenpgpConfig, enums, type SignaturePacket } from 'openpgp';
import { createStreamHasher, type StreamDigests } from './hash-thread.ts';
import type { Issuer } from './trust-rules.ts';
import { SignatureError, type VerifyOptions } from './types.ts';

/**
 * The data side of a signature check: the data is read once, chunk by chunk, hashed for the signature
 * and for its plain SHA-512 together, and only then is the signature itself checked.
 */

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

export async function verifyStream(
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
