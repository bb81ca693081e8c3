import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { PermanentError } from '../errors.ts';
import type { InstanceRecord } from './types.ts';

/**
 * Raw deflate at zlib's default level. Brotli packs a typical Ignition config about a tenth smaller, but
 * unpacks at half the speed (every fetch of an uncached record pays that) and only packs at a rate a bulk
 * registration can afford at low qualities, where the gain is smaller still; the bytes saved rarely cross
 * one of DynamoDB's 1 KB write-unit steps. The audit items use the same format.
 */
export function packInlineBody(body: Uint8Array): Uint8Array {
  // zlib answers with a view of its 16 KiB output chunk: a record that kept the view (the record cache
  // does) would pin the whole chunk, so the packed bytes get a buffer of their own.
  return new Uint8Array(deflateRawSync(body));
}

/** A stored inline body that does not unpack: the item was damaged outside cldist, and a retry cannot help. */
export class InlineBodyDamagedError extends PermanentError {
  constructor(id: string, cause: unknown) {
    super('inline-body-damaged', `the stored config of instance ${id} does not decompress; PUT it again`, {
      cause,
    });
    this.name = 'InlineBodyDamagedError';
  }
}

/** The body as it was PUT, at most `size` bytes (the record's own count), so a damaged item cannot balloon. */
export function unpackInlineBody(record: InstanceRecord, packed: Uint8Array): Uint8Array {
  try {
    return inflateRawSync(packed, { maxOutputLength: Math.max(1, record.size) });
  } catch (cause) {
    throw new InlineBodyDamagedError(record.id, cause);
  }
}

/** Whether a body of this many bytes goes into the ledger item rather than the config store. */
export function storesInline(bytes: number, inlineBodyMaxBytes: number): boolean {
  return bytes <= inlineBodyMaxBytes && inlineBodyMaxBytes > 0;
}
