import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../shared/errors.ts';
import {
  isUpdatePayloadMessage,
  parseUpdatePayloadJob,
  updatePayloadJobSchema,
} from '../../shared/mirror/update-payload-job.ts';
import { checkSha256File } from '../../shared/mirror/update-payload-transfer.ts';
import { CrauStreamReader, crauHeaderBytes } from '../../shared/update/crau-reader.ts';
import {
  parseUpdatePayloadKey,
  type UpdatePayloadKey,
  verifyCrauSignatures,
} from '../../shared/update/crau-verify.ts';
import { UpdatePayloadRefusedError } from '../../shared/update/errors.ts';
import { buildCrauPayload, signaturesBlob, testPayloadKey } from '../support/crau-generator.ts';
import { expectEachJobFieldChecked, reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('crau-payloads'));

let key: UpdatePayloadKey;
let genuine: Uint8Array;
/** Where the Signatures blob starts: bytes before it are signed, bytes from it on are the blob. */
let signedLength: number;

beforeAll(() => {
  const pair = testPayloadKey();
  key = parseUpdatePayloadKey(pair.publicPem, 'corpus key', 'update.payloadKeys.0');
  const payload = buildCrauPayload({ signers: [pair.privateKey], data: 3000 });
  genuine = payload.bytes;
  signedLength = crauHeaderBytes + payload.manifestSize + 3000;
});

type Outcome = { accepted: true } | { accepted: false; reason: string };

/**
 * Reads and verifies `bytes` in chunks of `chunk`; every outcome is an acceptance or a refusal with a reason
 * and a message that starts with it. Anything else thrown (a RangeError, a protobuf runtime error) fails.
 */
function judge(bytes: Uint8Array, chunk: number): Outcome {
  try {
    const reader = new CrauStreamReader();
    for (let offset = 0; offset < bytes.byteLength; offset += chunk) {
      reader.update(bytes.subarray(offset, offset + chunk));
    }
    verifyCrauSignatures(reader.finish(), [key]);
    return { accepted: true };
  } catch (error) {
    if (!(error instanceof UpdatePayloadRefusedError)) {
      throw new Error(`expected a refusal, got ${String(error)}`, { cause: error });
    }
    expect(error.code).toBe(`update-payload:${error.reason}`);
    expect(error.message).toMatch(new RegExp(`^update payload refused \\(${error.reason}\\): \\S`));
    return { accepted: false, reason: error.reason };
  }
}

function header(manifestSize: bigint, version = 1n): Uint8Array {
  const bytes = new Uint8Array(crauHeaderBytes);
  bytes.set([0x43, 0x72, 0x41, 0x55]);
  new DataView(bytes.buffer).setBigUint64(4, version, false);
  new DataView(bytes.buffer).setBigUint64(12, manifestSize, false);
  return bytes;
}

const chunkSizes = fc.constantFrom(1, 3, 20, 64, 1000, 1 << 20);

describe('bad-input corpus: CrAU update payloads (reader and signature check)', () => {
  it('the genuine payload is accepted in any chunking (the corpus starts from good input)', () => {
    for (const chunk of [1, 7, 4096]) expect(judge(genuine, chunk)).toEqual({ accepted: true });
  });

  it('random bytes, with or without the CrAU magic in front, are refused', async () => {
    await runCorpus(
      'crau random bytes',
      fc.tuple(
        fc.oneof(
          fc.uint8Array({ maxLength: 4096 }),
          fc.uint8Array({ maxLength: 4096 }).map((rest) => Uint8Array.of(0x43, 0x72, 0x41, 0x55, ...rest)),
        ),
        chunkSizes,
      ),
      ([bytes, chunk]) => {
        expect(judge(bytes, chunk).accepted).toBe(false);
      },
    );
  });

  it('a valid header over arbitrary manifests, manifest sizes and versions is refused, never read past', async () => {
    await runCorpus(
      'crau manifests',
      fc.tuple(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 1n << 64n }).map((n) => n % (1n << 64n)),
          fc.nat(8192).map(BigInt),
        ),
        fc.constantFrom(1n, 1n, 1n, 0n, 2n, (1n << 64n) - 1n),
        fc.uint8Array({ maxLength: 8192 }),
        chunkSizes,
      ),
      ([manifestSize, version, rest, chunk]) => {
        const bytes = Uint8Array.from([...header(manifestSize, version), ...rest]);
        expect(judge(bytes, chunk).accepted).toBe(false);
      },
    );
  });

  it('any change to the signed bytes, a cut or an extension is refused; only unsigned blob fields may vary', async () => {
    const reasons = new Map<string, number>();
    await runCorpus(
      'crau mutated payloads',
      fc.tuple(
        fc.oneof(
          fc
            .array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
            .map((flips) => ({ flips })),
          fc.nat().map((cut) => ({ cut })),
          fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => ({ tail })),
        ),
        chunkSizes,
      ),
      ([mutation, chunk]) => {
        let bytes = genuine.slice();
        if ('flips' in mutation) {
          for (const [at, mask] of mutation.flips) {
            const index = at % bytes.byteLength;
            bytes[index] = (bytes[index] ?? 0) ^ mask;
          }
        } else if ('cut' in mutation) {
          bytes = bytes.slice(0, mutation.cut % bytes.byteLength);
        } else {
          bytes = Uint8Array.from([...bytes, ...mutation.tail]);
        }
        const outcome = judge(bytes, chunk);
        if (outcome.accepted) {
          expect(bytes.byteLength).toBe(genuine.byteLength);
          expect(
            Buffer.from(bytes.subarray(0, signedLength)).equals(
              Buffer.from(genuine.subarray(0, signedLength)),
            ),
          ).toBe(true);
        } else {
          reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
        }
      },
    );
    process.stdout.write(
      `  mutated payloads refused by reason: ${JSON.stringify(Object.fromEntries(reasons))}\n`,
    );
    expect(reasons.get('crau-signature')).toBeGreaterThan(0);
    expect(reasons.get('crau-truncated')).toBeGreaterThan(0);
    expect(reasons.get('crau-trailing-data')).toBeGreaterThan(0);
  });

  it('arbitrary signature data in a well-formed blob is refused by the signature check', async () => {
    await runCorpus(
      'crau signatures',
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: 1, maxLength: 3 }),
      (signatures) => {
        const blob = signaturesBlob(signatures);
        const facts = { signedSha256: Buffer.alloc(32, 7), signatures: signatures.map((data) => ({ data })) };
        expect(blob.byteLength).toBeGreaterThan(0);
        expect(() => verifyCrauSignatures(facts, [key])).toThrow(UpdatePayloadRefusedError);
      },
    );
  });

  it('a .sha256 file is read as a hex digest first, and anything else is refused as unreadable', async () => {
    const digest = 'ab'.repeat(32);
    await runCorpus('sha256 files', fc.string({ maxLength: 200 }), (text) => {
      const bytes = new TextEncoder().encode(text);
      try {
        checkSha256File(bytes, digest, 'x.gz');
        expect(text.trim().split(/\s+/)[0]?.toLowerCase()).toBe(digest);
      } catch (error) {
        expect(error).toBeInstanceOf(UpdatePayloadRefusedError);
      }
    });
    expect(() =>
      checkSha256File(new TextEncoder().encode(`${digest.toUpperCase()}  x.gz\n`), digest, 'x.gz'),
    ).not.toThrow();
  });
});

const validJob = {
  v: 1,
  kind: 'update-payload',
  source: 'flatcar',
  channel: 'stable',
  board: 'amd64-usr',
  version: '4081.2.0',
  name: 'flatcar_production_update.gz',
  url: 'https://update.release.flatcar-linux.net/amd64-usr/4081.2.0/flatcar_production_update.gz',
};

describe('bad-input corpus: update payload queue messages', () => {
  it('any text is either a valid update payload job or a malformed-message PermanentError', async () => {
    await runCorpus(
      'update payload message',
      fc.oneof(
        fc.string(),
        fc.jsonValue().map((value) => JSON.stringify(value)),
      ),
      (body) => {
        try {
          const job = parseUpdatePayloadJob(body);
          expect(updatePayloadJobSchema.safeParse(job).success).toBe(true);
          expect(isUpdatePayloadMessage(body)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(PermanentError);
          expect((error as PermanentError).code).toBe('malformed-message');
        }
      },
    );
  });

  it('any single field replaced by junk is refused and the field is named', async () => {
    await expectEachJobFieldChecked('update payload message fields', validJob, parseUpdatePayloadJob);
    expect(parseUpdatePayloadJob(JSON.stringify(validJob))).toEqual(validJob);
  });
});
