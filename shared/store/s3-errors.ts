import { PermanentError, TransientError } from '../errors.ts';

const transientNames = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TooManyRequestsException',
]);

export function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = (error as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return metadata?.httpStatusCode;
}

export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : String(error);
}

/**
 * S3 answers "not there" as NoSuchKey for GET and a bare 404 (NotFound) for HEAD. A missing bucket is a
 * deployment fault, not a missing object, so it must not read as "absent".
 */
export function isS3NotFound(error: unknown): boolean {
  const name = errorName(error);
  if (name === 'NoSuchBucket' || name === 'NoSuchUpload') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(error) === 404;
}

/**
 * Sort an S3 failure into retry-or-not by class, so handlers never parse messages: throttling, 5xx and
 * anything that never got an HTTP answer (network) is transient; any other 4xx is a permanent refusal.
 */
export function mapS3Error(error: unknown, action: string, key: string): Error {
  const name = errorName(error);
  const status = httpStatus(error);
  const what = `S3 ${action} of ${JSON.stringify(key)} failed: ${name}`;
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  if (transientNames.has(name) || status === undefined || status >= 500 || status === 429) {
    return new TransientError('store-unavailable', what, { cause: error });
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || status === 403) {
    return new PermanentError('store-denied', what, { cause: error });
  }
  return new PermanentError('store-rejected', what, { cause: error });
}
