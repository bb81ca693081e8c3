import { createCipheriv, createHash } from 'node:crypto';

const zeros = Buffer.alloc(1 << 20);

/**
 * Deterministic pseudo-random bytes [start, end) of the object named by `seed`: an AES-256-CTR key stream,
 * so any range can be produced without the bytes before it and a 1 GiB artifact never sits in memory.
 * Each yielded chunk is a fresh buffer the caller may modify.
 */
export function* generatedBytes(
  seed: string,
  start: number,
  end: number,
  chunkSize = 1 << 20,
): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(start / 16)), 8);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const skip = start % 16;
  if (skip > 0) {
    cipher.update(zeros.subarray(0, skip));
  }
  const step = Math.min(chunkSize, zeros.length);
  for (let position = start; position < end; ) {
    const length = Math.min(step, end - position);
    yield cipher.update(zeros.subarray(0, length));
    position += length;
  }
}

/** The seed of an artifact's bytes: the same (name, version) always gives the same file. */
export function artifactSeed(name: string, version: string): string {
  return `cldist-sim-origin\u0000${version}\u0000${name}`;
}
