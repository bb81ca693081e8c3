import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { config, enums, readSignature, SignaturePacket } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeKey, randomBytes, signDetached, subkeyPacket, T0 } from '../support/pgp-fixtures.ts';

/**
 * shared/verify/signature-stream.ts hashes the data once on its own thread and hands openpgp.js the finished digest
 * through two fields its type declarations do not promise: it reads `signatureData` (the hashed area, for
 * the v4 trailer) and sets `hashed` (the digest `SignaturePacket.verify` uses instead of hashing `data`).
 * openpgp is pinned exactly in package.json; these tests fail on the upgrade that moves either field.
 */

type Seam = SignaturePacket & { hashed?: Promise<Uint8Array>; signatureData?: unknown };

const data = randomBytes(100_000, 11);
const noData = new Uint8Array(0);
let signer: Awaited<ReturnType<typeof subkeyPacket>>;
let signature: Uint8Array;

beforeAll(async () => {
  signer = subkeyPacket(await makeKey({ name: 'Seam Test' }), 0);
  signature = await signDetached(signer, data, { date: T0 });
});

async function freshPacket(): Promise<Seam> {
  const parsed = await readSignature({ binarySignature: signature });
  const packet = parsed.packets.find((p) => p instanceof SignaturePacket);
  if (packet === undefined) throw new Error('the fixture signature has no signature packet');
  return packet as Seam;
}

/** RFC 4880 section 5.2.4: a v4 signature signs hash(data ‖ hashed area ‖ 0x04 0xFF ‖ length of the area). */
function v4Digest(packet: Seam): Uint8Array {
  const area = packet.signatureData;
  if (!(area instanceof Uint8Array)) throw new Error('signatureData is not a Uint8Array');
  const trailer = new Uint8Array(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  new DataView(trailer.buffer).setUint32(2, area.byteLength);
  return new Uint8Array(createHash('sha512').update(data).update(area).update(trailer).digest());
}

const verify = (packet: Seam) =>
  packet.verify(signer, enums.signature.binary, noData, new Date(T0.getTime() + 1000), true, config);

describe('openpgp.js internals the verifier relies on', () => {
  it('is the exact version package.json pins', () => {
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const pinned = manifest.dependencies.openpgp;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(readFileSync('node_modules/openpgp/package.json', 'utf8')) as {
      version: string;
    };
    expect(installed.version).toBe(pinned);
  });

  it('parses a v4 signature with its hashed area in signatureData', async () => {
    const packet = await freshPacket();
    expect(packet.version).toBe(4);
    expect(packet.signatureData).toBeInstanceOf(Uint8Array);
  });

  it('verifies with the digest set in `hashed` and never reads the data argument', async () => {
    // Without `hashed`, openpgp.js hashes the data argument itself, and an empty array is no data packet.
    const control = await freshPacket();
    await expect(verify(control)).rejects.toThrow();

    const packet = await freshPacket();
    packet.hashed = Promise.resolve(v4Digest(packet));
    await expect(verify(packet)).resolves.toBeUndefined();
  });

  it('checks the digest in `hashed`: a wrong start and a wrong end are both refused', async () => {
    const early = await freshPacket();
    const badStart = v4Digest(early);
    badStart[0] = (badStart[0] ?? 0) ^ 0xff;
    early.hashed = Promise.resolve(badStart);
    await expect(verify(early)).rejects.toThrow(/digest did not match/);

    const late = await freshPacket();
    const badEnd = v4Digest(late);
    badEnd[badEnd.length - 1] = (badEnd[badEnd.length - 1] ?? 0) ^ 0xff;
    late.hashed = Promise.resolve(badEnd);
    await expect(verify(late)).rejects.toThrow(/verification failed/);
  });
});
