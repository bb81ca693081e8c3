import { ConfigError } from '../errors.ts';

/** A keyring is a handful of public keys; anything larger is a mistake, not a keyring. */
export const maxTrustObjectBytes = 1024 * 1024;

/** One armored text and what to call it in errors. */
export interface TrustInput {
  label: string;
  text: string;
}

/** What a read of the trust found: nothing new since `knownVersion`, or the texts and their version. */
export type TrustRead = { changed: false } | { changed: true; version: string; inputs: TrustInput[] };

/**
 * Where the keys that can change without a redeploy live: the trust object in the mirror bucket on AWS, the
 * keyring files and the trust file on one machine. `read` is cheap when nothing changed (a conditional GET,
 * a stat), so it can run on every poll and on every unknown signer.
 */
export interface TrustSource {
  /** Where an operator uploads a rotated key, for logs and alerts: `s3://bucket/trust/keyring.asc`, a path. */
  readonly location: string;
  read(knownVersion: string | undefined): Promise<TrustRead>;
}

const publicKeyBlock = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

/**
 * The armored public key blocks of a trust text. Empty (or whitespace) is the normal state before any
 * rotation. Anything else that is wrong fails loudly, because silently ignoring an operator's rotation would
 * surface months later as every release failing verification.
 */
export function publicKeyBlocks(text: string, where: string): string[] {
  if (Buffer.byteLength(text, 'utf8') > maxTrustObjectBytes) {
    throw new ConfigError(`trust keyring ${where} is larger than ${maxTrustObjectBytes} bytes`);
  }
  if (text.includes('PRIVATE KEY BLOCK')) {
    throw new ConfigError(
      `trust keyring ${where} contains a private key; upload only public keys and rotate the exposed key`,
    );
  }
  if (text.trim() === '') return [];
  const blocks = text.match(publicKeyBlock) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError(
      `trust keyring ${where} holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----"; upload ASCII-armored public keys (gpg --armor --export)`,
    );
  }
  return blocks.map((block) => `${block}\n`);
}
