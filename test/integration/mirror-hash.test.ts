import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { offThreadSha512 } from '../../shared/mirror/sha512-thread.ts';

describe('SHA-512 on a worker thread', () => {
  it('gives the same digest as node:crypto for chunks smaller and larger than a slot', async () => {
    const chunks = [0, 1, 1000, 4096, 10_000, 70_000, 3, 65_536].map((size) => randomBytes(size));
    const hash = offThreadSha512(2, 4096);
    try {
      for (const chunk of chunks) await hash.update(chunk);
      const expected = createHash('sha512');
      for (const chunk of chunks) expected.update(chunk);
      expect(await hash.digest()).toBe(expected.digest('hex'));
    } finally {
      await hash.close();
    }
  });

  it('does not let a caller overwrite a slot the worker has not hashed yet', async () => {
    const hash = offThreadSha512(1, 16);
    const chunk = new Uint8Array(16);
    const expected = createHash('sha512');
    try {
      for (let i = 0; i < 200; i++) {
        chunk.fill(i);
        expected.update(chunk);
        await hash.update(chunk);
      }
      expect(await hash.digest()).toBe(expected.digest('hex'));
    } finally {
      await hash.close();
    }
  });
});
