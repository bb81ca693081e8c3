/**
 * The mirror store port. Keys follow the upstream layout `{channel}/{board}/{version}/{file}`.
 * The one rule every adapter keeps: an object written through `beginUpload` is invisible until `commit`,
 * and `abort` leaves nothing behind, so nothing unverified is ever visible.
 */
export interface ObjectStore {
  /** Start a staged write; parts are sent with bounded memory. */
  beginUpload(key: string, options?: { contentType?: string }): Promise<StagedUpload>;
  /** Small whole-object write that becomes visible atomically (release.json, version.txt, .sig). */
  put(key: string, body: Uint8Array | string, options?: { contentType?: string }): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Streamed read, optionally of a byte range, for serving the mirror. `end` is inclusive and clamped to
   * the object, as in an HTTP `Range` header; a `start` at or past the end throws `RangeNotSatisfiableError`.
   * Consume the body to the end (or destroy it) so the underlying file or connection is released.
   */
  getStream(key: string, range?: { start: number; end?: number }): Promise<StoredStream | undefined>;
  head(key: string): Promise<{ size: number; lastModified: Date; etag?: string } | undefined>;
  /** Keys starting with `prefix` (a plain string prefix, not a folder), in ascending order. */
  list(prefix: string): Promise<string[]>;
  /** Removing a key that does not exist is not an error. */
  delete(key: string): Promise<void>;
}

export interface StoredStream {
  body: AsyncIterable<Uint8Array>;
  size: number;
  /** Total object size, when a range was asked for. */
  totalSize: number;
  etag?: string;
  lastModified: Date;
}

export interface StagedUpload {
  /**
   * Append bytes. Resolves when the adapter can take more (backpressure); the chunk may be reused as soon
   * as it resolves. A failed background part upload surfaces here (or in `commit`) as a TransientError.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes accepted so far. */
  readonly bytesWritten: number;
  /** Make the object visible under its key. Only ever called after the signature verified. */
  commit(): Promise<void>;
  /** Throw away everything written; safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}
