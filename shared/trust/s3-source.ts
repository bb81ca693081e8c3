import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigError, TransientError } from '../errors.ts';
import { maxTrustObjectBytes, publicKeyBlocks, type TrustRead, type TrustSource } from './source.ts';

/** The version of an absent object: distinct from every ETag, so uploading one is a change. */
const absentVersion = 'absent';

function statusOf(error: unknown): number | undefined {
  const metadata = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return metadata?.httpStatusCode;
}

/**
 * The trust object in the mirror bucket, read with `If-None-Match` so an unchanged object costs one small
 * 304. A provider imports a rotated signing key by uploading one object instead of redeploying; trust still
 * comes only from the configured primary fingerprints, so these keys are candidates, not anchors.
 */
export function s3TrustSource(s3: S3Client, bucket: string, key: string): TrustSource {
  const where = `s3://${bucket}/${key}`;
  return {
    location: where,
    async read(knownVersion): Promise<TrustRead> {
      let text: string;
      let etag: string;
      try {
        const ifNoneMatch =
          knownVersion === undefined || knownVersion === absentVersion ? {} : { IfNoneMatch: knownVersion };
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...ifNoneMatch }));
        if (got.ContentLength !== undefined && got.ContentLength > maxTrustObjectBytes) {
          throw new ConfigError(
            `trust keyring ${where} is ${got.ContentLength} bytes; at most ${maxTrustObjectBytes} are accepted`,
          );
        }
        text = (await got.Body?.transformToString('utf8')) ?? '';
        etag = got.ETag ?? `unversioned:${text.length}`;
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        const name = error instanceof Error ? error.name : '';
        if (statusOf(error) === 304 || name === 'NotModified') return { changed: false };
        if (name === 'NoSuchKey' || name === 'NotFound') {
          return knownVersion === absentVersion
            ? { changed: false }
            : { changed: true, version: absentVersion, inputs: [] };
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
      if (etag === knownVersion) return { changed: false };
      const blocks = publicKeyBlocks(text, where);
      return {
        changed: true,
        version: etag,
        inputs: blocks.map((block, index) => ({ label: `${where} key #${index + 1}`, text: block })),
      };
    },
  };
}
