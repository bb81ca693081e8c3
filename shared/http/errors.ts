import { PermanentError, TransientError } from '../errors.ts';

/**
 * 404 or 410. Its own class because the worker reports a missing artifact (an alert) instead of a failure:
 * upstream releases have shipped without some files.
 */
export class NotFoundError extends PermanentError {
  readonly url: string;
  constructor(url: string, status: number) {
    super('not-found', `GET ${url} answered ${status}: not found`);
    this.name = 'NotFoundError';
    this.url = url;
  }
}

/**
 * The object changed between the first request and a resume (If-Range did not match). Transient: the caller
 * aborts what it has uploaded so far and retries the whole job against the new object.
 */
export class ObjectChangedError extends TransientError {
  readonly url: string;
  constructor(url: string, detail: string) {
    super('object-changed', `${url} changed during the download (${detail}); start over`);
    this.name = 'ObjectChangedError';
    this.url = url;
  }
}
