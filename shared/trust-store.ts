import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigError, TransientError } from './errors.ts';

/** A keyring is a handful of public keys; anything larger is a mistake, not a keyring. */
export const maxTrustObjectBytes = 1024 * 1024;

export interface TrustExtensionOptions {
  /** How long a loaded keyring is reused before the object is read again. */
  ttlMs: number;
  clock: () => Date;
}

interface CacheEntry {
  loadedAt: number;
  keys: Promise<string[]>;
}

const cache = new Map<string, CacheEntry>();

const publicKeyBlock = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

/**
 * Reads the armored public keys that extend the bundled keyring, so a provider can import a rotated
 * signing key by uploading one object instead of redeploying. Trust still comes only from the configured
 * primary fingerprints: these texts are candidates for the verifier, not trust anchors.
 *
 * A missing (or empty) object is the normal state (no rotation yet) and yields `[]`. Anything else that is wrong
 * (no public key block, a private key, too big, access denied) fails loudly, because silently ignoring
 * an operator's rotation would surface months later as every release failing verification.
 *
 * The result is cached per object for `ttlMs` so a warm function reads S3 at most once per TTL; callers
 * that arrive during a load share it. Failed loads are not cached.
 */
export function loadTrustExtension(
  s3: S3Client,
  bucket: string,
  key: string,
  options: TrustExtensionOptions,
): Promise<string[]> {
  const cacheKey = `${bucket}\u0000${key}`;
  const now = options.clock().getTime();
  const cached = cache.get(cacheKey);
  if (cached !== undefined && now - cached.loadedAt < options.ttlMs) {
    return cached.keys;
  }
  const entry: CacheEntry = { loadedAt: now, keys: readKeyring(s3, bucket, key) };
  cache.set(cacheKey, entry);
  entry.keys.catch(() => {
    if (cache.get(cacheKey) === entry) {
      cache.delete(cacheKey);
    }
  });
  return entry.keys;
}

async function readKeyring(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const where = `s3://${bucket}/${key}`;
  let text: string;
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (got.ContentLength !== undefined && got.ContentLength > maxTrustObjectBytes) {
      throw new ConfigError(
        `trust keyring ${where} is ${got.ContentLength} bytes; at most ${maxTrustObjectBytes} are accepted`,
      );
    }
    text = (await got.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    if (error instanceof ConfigError) {
      throw error;
    }
    const name = error instanceof Error ? error.name : '';
    if (name === 'NoSuchKey' || name === 'NotFound') {
      return [];
    }
    if (name === 'AccessDenied' || name === 'NoSuchBucket') {
      throw new ConfigError(
        `cannot read trust keyring ${where} (${name}); the function needs s3:GetObject on it and s3:ListBucket on the bucket`,
        { cause: error },
      );
    }
    throw new TransientError('trust-keyring-unavailable', `cannot read trust keyring ${where}`, {
      cause: error,
    });
  }
  if (Buffer.byteLength(text, 'utf8') > maxTrustObjectBytes) {
    throw new ConfigError(`trust keyring ${where} is larger than ${maxTrustObjectBytes} bytes`);
  }
  if (text.includes('PRIVATE KEY BLOCK')) {
    throw new ConfigError(
      `trust keyring ${where} contains a private key; upload only public keys and rotate the exposed key`,
    );
  }
  if (text.trim() === '') {
    return [];
  }
  const blocks = text.match(publicKeyBlock) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError(
      `trust keyring ${where} holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----"; upload ASCII-armored public keys (gpg --armor --export)`,
    );
  }
  return blocks.map((block) => `${block}\n`);
}
