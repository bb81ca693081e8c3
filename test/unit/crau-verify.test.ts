import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultUpdatePayloadKeyFiles } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import { CrauStreamReader, readCrau } from '../../shared/update/crau-reader.ts';
import {
  loadUpdatePayloadKeys,
  parseUpdatePayloadKey,
  type UpdatePayloadKey,
  verifyCrauSignatures,
} from '../../shared/update/crau-verify.ts';
import { CrauFormatError, CrauSignatureError } from '../../shared/update/errors.ts';
import { buildCrauPayload, type TestKeyPair, testPayloadKey } from '../support/crau-generator.ts';

let signer: TestKeyPair;
let other: TestKeyPair;
let trusted: UpdatePayloadKey;
let folder: string;

beforeAll(async () => {
  signer = testPayloadKey();
  other = testPayloadKey();
  trusted = parseUpdatePayloadKey(signer.publicPem, 'test key', 'update.payloadKeys.0');
  folder = await mkdtemp(join(tmpdir(), 'cldist-crau-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

function refusal(run: () => unknown): CrauFormatError | CrauSignatureError {
  try {
    run();
  } catch (error) {
    if (error instanceof CrauFormatError || error instanceof CrauSignatureError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const digest = (algorithm: string, bytes: Uint8Array) => createHash(algorithm).update(bytes).digest();

describe('CrAU payload reader and signature check', () => {
  it('reads a generated payload in one pass, whatever the chunking, with the hashes of its bytes', () => {
    const payload = buildCrauPayload({ signers: [signer.privateKey], data: 100_003 });
    for (const chunk of [1, 7, 20, 4096, 1 << 20]) {
      const facts = readCrau(payload.bytes, chunk);
      expect(facts.size).toBe(payload.bytes.byteLength);
      expect(facts.sha1.equals(digest('sha1', payload.bytes))).toBe(true);
      expect(facts.sha256.equals(digest('sha256', payload.bytes))).toBe(true);
      expect(facts.signedSha256.equals(payload.signedSha256)).toBe(true);
      expect(facts.manifestSize).toBe(payload.manifestSize);
      expect(facts.manifest.signaturesOffset).toBe(100_003);
      expect(facts.signatures).toHaveLength(1);
      expect(verifyCrauSignatures(facts, [trusted])).toMatchObject({ signatureIndex: 0, key: trusted });
    }
  });

  it('accepts a payload when one of its signatures is by a configured key, as production payloads are', () => {
    const payload = buildCrauPayload({ signers: [other.privateKey, signer.privateKey] });
    const facts = readCrau(payload.bytes);
    expect(facts.signatures.map((s) => s.version)).toEqual([1, 2]);
    expect(verifyCrauSignatures(facts, [trusted]).signatureIndex).toBe(1);
  });

  it('refuses a payload signed by another key, naming the keys it tried', () => {
    const facts = readCrau(buildCrauPayload({ signers: [other.privateKey] }).bytes);
    const error = refusal(() => verifyCrauSignatures(facts, [trusted]));
    expect(error).toBeInstanceOf(CrauSignatureError);
    expect(error.reason).toBe('crau-signature');
    expect(error.message).toMatch(
      /^update payload refused \(crau-signature\): none of its 1 signature.*test key/,
    );
  });

  it('refuses a flipped data byte and a flipped signature byte', () => {
    for (const tamper of [{ flipDataByte: 1234 }, { flipSignatureByte: true }]) {
      const facts = readCrau(buildCrauPayload({ signers: [signer.privateKey], tamper }).bytes);
      expect(refusal(() => verifyCrauSignatures(facts, [trusted]))).toBeInstanceOf(CrauSignatureError);
    }
  });

  it('refuses a Signatures blob that does not parse', () => {
    const payload = buildCrauPayload({
      signers: [signer.privateKey],
      tamper: { garbageSignatureBlob: true },
    });
    const error = refusal(() => readCrau(payload.bytes));
    expect(error).toBeInstanceOf(CrauFormatError);
    expect(error.message).toMatch(/Signatures blob/);
  });

  it('refuses a payload cut anywhere: in the header, the manifest, the data or the signature blob', () => {
    const whole = buildCrauPayload({ signers: [signer.privateKey], data: 5000 }).bytes;
    for (const length of [0, 3, 19, 25, 20 + 40, 3000, whole.byteLength - 1]) {
      const error = refusal(() => readCrau(whole.slice(0, length)));
      expect(error.reason, `cut at ${length}`).toBe('crau-truncated');
      expect(error.message).toContain(`ends after ${length} bytes`);
    }
  });

  it('stops at the first byte past the signature blob, before the rest is downloaded', () => {
    const payload = buildCrauPayload({
      signers: [signer.privateKey],
      tamper: { trailing: new Uint8Array(10) },
    });
    const reader = new CrauStreamReader();
    const signedLength = payload.bytes.byteLength - 10;
    reader.update(payload.bytes.subarray(0, signedLength));
    const error = refusal(() => reader.update(payload.bytes.subarray(signedLength, signedLength + 1)));
    expect(error.reason).toBe('crau-trailing-data');
  });

  it('refuses the wrong magic and another format version from the header alone', () => {
    const good = buildCrauPayload({ signers: [signer.privateKey] }).bytes;
    const wrongMagic = good.slice();
    wrongMagic[0] = 0x1f;
    const reader = new CrauStreamReader();
    expect(refusal(() => reader.update(wrongMagic.subarray(0, 20))).message).toMatch(/not the CrAU magic/);
    const v2 = buildCrauPayload({ signers: [signer.privateKey], tamper: { formatVersion: 2n } }).bytes;
    expect(refusal(() => readCrau(v2)).message).toMatch(/format version 2/);
  });

  it('loads the official update payload key by default, and names the field of a bad key', async () => {
    const [official] = loadUpdatePayloadKeys(defaultUpdatePayloadKeyFiles);
    expect(official?.modulusBytes).toBe(256);
    const missing = join(folder, 'missing.pem');
    expect(() => loadUpdatePayloadKeys([defaultUpdatePayloadKeyFiles[0] ?? '', missing])).toThrow(
      /^update\.payloadKeys\.1: cannot read .*missing\.pem/,
    );
    const ed25519 = join(folder, 'ed25519.pem');
    const edKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
    await writeFile(ed25519, edKey);
    expect(() => loadUpdatePayloadKeys([ed25519])).toThrow(ConfigError);
    expect(() => loadUpdatePayloadKeys([ed25519])).toThrow(/update\.payloadKeys\.0: .* ed25519 key/);
    const junk = join(folder, 'junk.pem');
    await writeFile(junk, 'not a key');
    expect(() => loadUpdatePayloadKeys([junk])).toThrow(/update\.payloadKeys\.0: .* not a PEM public key/);
  });
});
