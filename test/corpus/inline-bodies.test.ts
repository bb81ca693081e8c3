import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InlineBodyDamagedError,
  packInlineBody,
  unpackInlineBody,
} from '../../shared/instances/inline-body.ts';
import type { InstanceRecord } from '../../shared/instances/types.ts';

const recordOf = (size: number): InstanceRecord => ({
  id: 'node-1',
  kind: 'ignition',
  tokenHash: 'a'.repeat(64),
  etag: '"e"',
  bodyKey: '',
  size,
  oneTime: false,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
});

describe('inline bodies as stored in the ledger', () => {
  it('unpack to exactly what was packed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (body) => {
        const unpacked = unpackInlineBody(recordOf(body.byteLength), packInlineBody(body));
        expect(Buffer.from(unpacked).equals(Buffer.from(body))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuse any damaged or foreign bytes with InlineBodyDamagedError, never more than the recorded size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: 0, max: 256 }), (junk, size) => {
        try {
          expect(unpackInlineBody(recordOf(size), junk).byteLength).toBeLessThanOrEqual(Math.max(1, size));
        } catch (error) {
          expect(error).toBeInstanceOf(InlineBodyDamagedError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuse a body that inflates beyond the recorded size (a swapped or inflated item)', () => {
    const packed = packInlineBody(Buffer.alloc(100_000, 0x61));
    expect(() => unpackInlineBody(recordOf(1000), packed)).toThrow(InlineBodyDamagedError);
  });
});

describe('packed inline bodies in memory', () => {
  it('own a buffer of exactly their length, so a cached record pins nothing more', () => {
    const packed = packInlineBody(Buffer.from('{"ignition":{"version":"3.3.0"}}'));
    expect(packed.buffer.byteLength).toBe(packed.byteLength);
    expect(packed.byteOffset).toBe(0);
  });
});
