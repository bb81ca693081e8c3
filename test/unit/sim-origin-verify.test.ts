import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSimKeyring } from '../../local/sim-origin/keyring.ts';
import {
  faults,
  type PublishedRelease,
  type SimOrigin,
  startSimOrigin,
} from '../../local/sim-origin/sim-origin.ts';
import { fetchSmall, streamDownload } from '../../shared/http/fetch.ts';
import type { Keyring } from '../../shared/verify/keyring.ts';
import { SignatureError } from '../../shared/verify/types.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';

let origin: SimOrigin;
let release: PublishedRelease;
let keyring: Keyring;
const size = 3_000_000;

async function downloadAndVerify() {
  const url = `${release.url}/flatcar_production_image.bin.bz2`;
  const signature = await fetchSmall(`${url}.sig`, { maxBytes: 65_536, timeoutMs: 5_000 });
  const download = await streamDownload(url, { maxBytes: 1 << 30, maxResumes: 2, timeoutMs: 5_000 });
  const verified = await verifyDetached(download.body, signature, keyring, {
    now: new Date(),
    maxClockSkewSeconds: 300,
    ...(download.contentLength === undefined ? {} : { expectedBytes: download.contentLength }),
  });
  return { verified, resumes: download.resumes };
}

beforeAll(async () => {
  origin = await startSimOrigin();
  release = await origin.publishRelease({
    channel: 'stable',
    board: 'amd64-usr',
    version: '3510.2.8',
    artifacts: [{ name: 'flatcar_production_image.bin.bz2', size }],
  });
  keyring = await makeSimKeyring(origin);
});

afterAll(async () => {
  await origin.close();
});

describe('sim origin with the project verifier', () => {
  it('verifies a streamed artifact against the sim keyring, even across a resume', async () => {
    origin.inject(/image\.bin\.bz2$/, faults.dropAfter(1_000_000));
    const { verified, resumes } = await downloadAndVerify();
    expect(resumes).toBe(1);
    expect(verified).toMatchObject({
      primaryKeyFingerprint: origin.primaryFingerprint,
      signingKeyFingerprint: origin.signingKeyFingerprint,
      hashAlgorithm: 'SHA512',
      bytes: size,
    });
  });

  it('refuses a tampered artifact as tampered', async () => {
    origin.inject(/image\.bin\.bz2$/, faults.tamper(size - 1));
    const attempt = downloadAndVerify();
    await expect(attempt).rejects.toBeInstanceOf(SignatureError);
    await expect(attempt).rejects.toMatchObject({ reason: 'tampered' });
  });
});
