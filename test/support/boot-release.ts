import { diskImage, pxeInitramfs, pxeKernel } from '../../shared/boot/profiles.ts';
import type { Ledger, ReleaseRef, VerifiedArtifactFacts } from '../../shared/ledger/ledger.ts';

/** Facts of a verified artifact that nothing reads back: the boot routes only ask that it is verified. */
const placeholderFacts: VerifiedArtifactFacts = {
  size: 1,
  sha512: '0'.repeat(128),
  signingKeyFingerprint: 'A'.repeat(40),
  primaryKeyFingerprint: 'B'.repeat(40),
  signatureCreated: '2026-01-01T00:00:00.000Z',
  hashAlgorithm: 'SHA512',
};

/**
 * Puts a release in the ledger as the mirror leaves it: claimed with the PXE pair and the disk image, each
 * verified with `facts`, and (unless `current` is false) the channel's current release.
 */
export async function mirrorBootRelease(
  ledger: Ledger,
  release: ReleaseRef,
  options: { current?: boolean; facts?: VerifiedArtifactFacts } = {},
): Promise<void> {
  const names = [pxeKernel, pxeInitramfs, diskImage];
  await ledger.claimRelease(
    release,
    names.map((name) => ({
      name,
      required: true,
      url: `http://o/${name}`,
      signatureUrl: `http://o/${name}.sig`,
    })),
  );
  for (const artifact of names) {
    await ledger.markVerified({ ...release, artifact }, options.facts ?? placeholderFacts);
  }
  if (options.current !== false) await ledger.advanceCurrent(release);
}
