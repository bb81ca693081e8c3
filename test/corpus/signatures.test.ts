import fc from 'fast-check';
import { armor, enums, type PrivateKey, readSignature, SignaturePacket } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Keyring, loadKeyring } from '../../shared/verify/keyring.ts';
import { SignatureError, type VerifyOptions } from '../../shared/verify/types.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';
import {
  at,
  fingerprint,
  makeKey,
  publicArmor,
  randomBytes,
  signDetached,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';

afterAll(() => reportTallies('signatures'));

const data = randomBytes(40_000, 11);
const options: VerifyOptions = { now: at(60), maxClockSkewSeconds: 300 };
/** Generous for a 40 kB Ed25519 check, which takes milliseconds: only a hang gets near it. */
const perCaseMs = 5_000;

let signer: PrivateKey;
let keyring: Keyring;
let genuine: Uint8Array[];

/** Tracks how far the verifier pulled the data, to tell "read to the end" from "left alone". */
function source(bytes: Uint8Array, chunk = 8 * 1024) {
  const state = { pulled: 0, finished: false, returned: false };
  async function* generate(): AsyncGenerator<Uint8Array> {
    try {
      for (let offset = 0; offset < bytes.byteLength; offset += chunk) {
        state.pulled += bytes.slice(offset, offset + chunk).byteLength;
        yield bytes.slice(offset, offset + chunk);
      }
      state.finished = true;
    } finally {
      state.returned = true;
    }
  }
  return { state, iterable: generate() };
}

type Outcome = { accepted: true; bytes: number } | { accepted: false; error: SignatureError };

/**
 * Every outcome must be a result for the real signer with every byte read, or a SignatureError with a
 * reason and a message that starts with it; a refusal never leaves the data half-read and still open.
 */
async function judge(signature: Uint8Array, payload: Uint8Array = data): Promise<Outcome> {
  const { state, iterable } = source(payload);
  let outcome: Outcome;
  try {
    const result = await within(
      perCaseMs,
      'verifyDetached',
      verifyDetached(iterable, signature, keyring, options),
    );
    expect(result.primaryKeyFingerprint).toBe(fingerprint(signer));
    expect(result.bytes).toBe(payload.byteLength);
    expect(state.finished).toBe(true);
    outcome = { accepted: true, bytes: result.bytes };
  } catch (error) {
    if (!(error instanceof SignatureError)) {
      throw new Error(`expected a SignatureError, got ${String(error)}`, { cause: error });
    }
    expect(error.code).toBe(`bad-signature:${error.reason}`);
    expect(error.message).toMatch(new RegExp(`^bad signature \\(${error.reason}\\): \\S`));
    if (state.pulled > 0 && !state.finished) {
      throw new Error(
        `refused after reading ${state.pulled} of ${payload.byteLength} bytes, without finishing`,
      );
    }
    outcome = { accepted: false, error };
  }
  if (!state.finished) await iterable.return(undefined);
  return outcome;
}

beforeAll(async () => {
  signer = await makeKey({ name: 'Corpus Signer' });
  keyring = await loadKeyring([publicArmor(signer)], [fingerprint(signer)]);
  const hashes = [enums.hash.sha256, enums.hash.sha384, enums.hash.sha512];
  genuine = await Promise.all(
    hashes.map((hash, index) => signDetached(subkeyPacket(signer, 0), data, { date: at(10 + index), hash })),
  );
});

const armoredText = (bytes: Uint8Array) => new TextEncoder().encode(armor(enums.armor.signature, bytes));

/** The signature packets as openpgp.js writes them back (other packets dropped): equal for two encodings of one signature. */
async function canonical(bytes: Uint8Array, armored: boolean): Promise<string> {
  const signature = armored
    ? await readSignature({ armoredSignature: new TextDecoder().decode(bytes) })
    : await readSignature({ binarySignature: bytes });
  return signature.packets
    .filter((packet) => packet instanceof SignaturePacket)
    .map((packet) => Buffer.from(packet.write()).toString('hex'))
    .join(' ');
}

describe('bad-input corpus: detached signatures', () => {
  it('the genuine signatures, binary and armored, are accepted (the corpus starts from good input)', async () => {
    for (const signature of genuine) {
      expect(await judge(signature)).toEqual({ accepted: true, bytes: data.byteLength });
      expect(await judge(armoredText(signature))).toEqual({ accepted: true, bytes: data.byteLength });
    }
  });

  it('random bytes, and random bytes behind an armor header, are refused as garbage', async () => {
    const reasons = new Map<string, number>();
    await runCorpus(
      'signature',
      fc.oneof(
        fc.uint8Array({ maxLength: 2048 }),
        fc
          .uint8Array({ minLength: 1, maxLength: 600 })
          .map((bytes) => Uint8Array.of(0x88 + ((bytes[0] ?? 0) % 4), ...bytes.subarray(1))),
        fc
          .base64String({ maxLength: 800 })
          .map((body) =>
            new TextEncoder().encode(
              `-----BEGIN PGP SIGNATURE-----\n\n${body}\n-----END PGP SIGNATURE-----\n`,
            ),
          ),
        fc
          .string({ maxLength: 400 })
          .map((text) => new TextEncoder().encode(`-----BEGIN PGP SIGNATURE-----\n${text}`)),
      ),
      async (signature) => {
        const outcome = await judge(signature);
        if (outcome.accepted) throw new Error('random bytes were accepted as a signature');
        reasons.set(outcome.error.reason, (reasons.get(outcome.error.reason) ?? 0) + 1);
      },
    );
    process.stdout.write(
      `  random signatures refused by reason: ${JSON.stringify(Object.fromEntries(reasons))}\n`,
    );
  });

  it('truncated or bit-flipped genuine signatures are refused with a reason, or are the same signature re-encoded', async () => {
    const tally = { accepted: 0, refused: new Map<string, number>() };
    await runCorpus(
      'signature',
      fc.record({
        which: fc.nat(2),
        armored: fc.boolean(),
        kind: fc.constantFrom('truncate', 'flip', 'flip-many', 'append'),
        at: fc.nat(),
        bit: fc.nat(7),
        more: fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 2, maxLength: 8 }),
        tail: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      }),
      async ({ which, armored, kind, at: position, bit, more, tail }) => {
        const real = genuine[which] ?? new Uint8Array();
        let mutated: Uint8Array;
        if (kind === 'truncate') {
          mutated = real.slice(0, position % real.byteLength);
        } else if (kind === 'append') {
          mutated = Uint8Array.of(...real, ...tail);
        } else {
          mutated = real.slice();
          const flips = kind === 'flip' ? [[position, bit] as const] : more;
          for (const [index, b] of flips) {
            const i = index % mutated.byteLength;
            mutated[i] = (mutated[i] ?? 0) ^ (1 << b);
          }
        }
        const outcome = await judge(armored ? armoredText(mutated) : mutated);
        if (outcome.accepted) {
          tally.accepted += 1;
          expect(await canonical(mutated, false)).toBe(await canonical(real, false));
        } else {
          tally.refused.set(outcome.error.reason, (tally.refused.get(outcome.error.reason) ?? 0) + 1);
        }
      },
      400,
    );
    process.stdout.write(
      `  mutated genuine signatures: ${tally.accepted} still verify, refused by reason ${JSON.stringify(Object.fromEntries(tally.refused))}\n`,
    );
  });

  it('armor around a genuine signature with characters changed is refused or still the same signature', async () => {
    await runCorpus(
      'signature',
      fc.record({
        which: fc.nat(2),
        at: fc.nat(),
        replacement: fc.constantFrom('A', '/', '+', '=', '-', ' ', '\n', '\u0000', '\u00e9', '*', ''),
      }),
      async ({ which, at: position, replacement }) => {
        const real = genuine[which] ?? new Uint8Array();
        const text = new TextDecoder().decode(armoredText(real));
        const i = position % text.length;
        const mutated = new TextEncoder().encode(text.slice(0, i) + replacement + text.slice(i + 1));
        if ((await judge(mutated)).accepted) {
          expect(await canonical(mutated, true)).toBe(await canonical(real, false));
        }
      },
    );
  });

  it('a genuine signature over changed or cut data is refused as tampered or truncated, after reading it all', async () => {
    await runCorpus(
      'signature',
      fc.record({
        which: fc.nat(2),
        kind: fc.constantFrom('flip', 'cut', 'extend'),
        at: fc.nat(),
        bit: fc.nat(7),
        announce: fc.boolean(),
      }),
      async ({ which, kind, at: position, bit, announce }) => {
        let payload: Uint8Array;
        if (kind === 'flip') {
          payload = data.slice();
          const i = position % payload.byteLength;
          payload[i] = (payload[i] ?? 0) ^ (1 << bit);
        } else if (kind === 'cut') {
          payload = data.slice(0, position % data.byteLength);
        } else {
          payload = Uint8Array.of(...data, bit);
        }
        const { state, iterable } = source(payload);
        const promise = verifyDetached(iterable, genuine[which] ?? new Uint8Array(), keyring, {
          ...options,
          ...(announce ? { expectedBytes: data.byteLength } : {}),
        });
        const error = await within(perCaseMs, 'verifyDetached', promise).then(
          () => {
            throw new Error(`accepted ${kind}ed data`);
          },
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(SignatureError);
        const expected = kind === 'cut' && announce ? 'truncated' : 'tampered';
        expect((error as SignatureError).reason).toBe(expected);
        expect(state.finished).toBe(true);
      },
      200,
    );
  });
});
