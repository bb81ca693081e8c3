import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { createStreamHasher, hashThreadCounts } from '../../shared/verify/hash-thread.ts';
import { randomBytes } from '../support/pgp-fixtures.ts';

const MiB = 1 << 20;

function expected(hash: string, chunks: Uint8Array[], tail: Uint8Array[]) {
  const plain = createHash('sha512');
  const signed = createHash(hash);
  for (const chunk of chunks) {
    plain.update(chunk);
    signed.update(chunk);
  }
  for (const part of tail) signed.update(part);
  return { sha512: plain.digest('hex'), digest: new Uint8Array(signed.digest()) };
}

async function hashAll(hash: string, chunks: Uint8Array[], tail: Uint8Array[]) {
  const hasher = createStreamHasher(hash);
  try {
    for (const chunk of chunks) await hasher.update(chunk);
    return await hasher.finish(tail);
  } finally {
    hasher.cancel();
  }
}

describe('hash thread', () => {
  const tail = [new Uint8Array([4, 0xff, 0, 0, 0, 9]), randomBytes(9, 3)];

  it.each(['sha256', 'sha384', 'sha512'])(
    'gives the plain SHA-512 and the %s digest over data then tail',
    async (hash) => {
      const chunks = [randomBytes(MiB, 1), randomBytes(17, 2), new Uint8Array(0), randomBytes(MiB + 5, 4)];
      expect(await hashAll(hash, chunks, tail)).toEqual(expected(hash, chunks, tail));
    },
  );

  it('splits chunks larger than a slot and keeps their order', async () => {
    const chunks = [randomBytes(5 * MiB + 123, 5), randomBytes(3, 6), randomBytes(2 * MiB, 7)];
    expect(await hashAll('sha512', chunks, tail)).toEqual(expected('sha512', chunks, tail));
  });

  it('copies each chunk, so the caller may overwrite it at once', async () => {
    const buffer = randomBytes(64 * 1024, 8);
    const seen: Uint8Array[] = [];
    const hasher = createStreamHasher('sha512');
    for (let round = 0; round < 12; round++) {
      buffer[round] = round;
      seen.push(Uint8Array.from(buffer));
      await hasher.update(buffer);
      buffer.fill(0xaa);
    }
    expect(await hasher.finish([])).toEqual(expected('sha512', seen, []));
  });

  it('keeps concurrent streams apart', async () => {
    const streams = Array.from({ length: 6 }, (_, index) => [
      randomBytes(MiB + index, 10 + index),
      randomBytes(300_000, 20 + index),
    ]);
    const results = await Promise.all(streams.map((chunks) => hashAll('sha512', chunks, tail)));
    results.forEach((result, index) => {
      expect(result).toEqual(expected('sha512', streams[index] ?? [], tail));
    });
  });

  it('gives a cancelled stream’s thread back clean: the next streams hash only their own data', async () => {
    for (let round = 0; round < 8; round++) {
      const abandoned = createStreamHasher('sha512');
      for (let i = 0; i < 6; i++) await abandoned.update(randomBytes(MiB, 30 + i));
      abandoned.cancel();
      const chunks = [randomBytes(200_000, 40 + round)];
      expect(await hashAll('sha512', chunks, tail)).toEqual(expected('sha512', chunks, tail));
    }
    await vi.waitFor(() => expect(hashThreadCounts().lent).toBe(0));
    expect(hashThreadCounts().idle).toBeGreaterThan(0);
    expect(hashThreadCounts().idle).toBeLessThanOrEqual(4);
  });

  it('refuses an unknown hash with a message that names it, and the thread stays usable', async () => {
    const hasher = createStreamHasher('no-such-hash');
    await expect(
      (async () => {
        await hasher.update(randomBytes(10, 50));
        return hasher.finish([]);
      })(),
    ).rejects.toThrow(/hashing failed: .*digest/i);
    hasher.cancel();
    const chunks = [randomBytes(1000, 51)];
    expect(await hashAll('sha512', chunks, [])).toEqual(expected('sha512', chunks, []));
    await vi.waitFor(() => expect(hashThreadCounts().lent).toBe(0));
  });

  it('answers finish once and lends the thread back after it', async () => {
    const before = hashThreadCounts();
    const hasher = createStreamHasher('sha512');
    expect(hashThreadCounts().lent).toBe(before.lent + 1);
    await hasher.update(randomBytes(10, 60));
    await hasher.finish([]);
    expect(hashThreadCounts().lent).toBe(before.lent);
    hasher.cancel();
    expect(hashThreadCounts().lent).toBe(before.lent);
  });
});
