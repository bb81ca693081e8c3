import { describe, expect, it } from 'vitest';
import { createInstanceCache, type LookupAnswer } from '../../local/metadata-proxy/instance-cache.ts';
import { approximateBytes, createBoundedMap } from '../../shared/cache-size.ts';
import { createBodyCache } from '../../shared/instances/body-cache.ts';

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe('config body cache', () => {
  it('stays within its byte budget, dropping the least recently used body first', () => {
    const cache = createBodyCache(100);
    cache.set('a', bytes(40, 1));
    cache.set('b', bytes(40, 2));
    expect(cache.get('a')?.[0]).toBe(1); // a is now the most recent
    cache.set('c', bytes(40, 3)); // 120 bytes: b goes
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.[0]).toBe(1);
    expect(cache.get('c')?.[0]).toBe(3);
  });

  it('never holds a body larger than the whole budget, and never replaces a body under a key', () => {
    const cache = createBodyCache(100);
    cache.set('big', bytes(101));
    expect(cache.get('big')).toBeUndefined();
    cache.set('k', bytes(10, 7));
    cache.set('k', bytes(10, 9));
    expect(cache.get('k')?.[0]).toBe(7);
  });

  it('keeps empty bodies', () => {
    const cache = createBodyCache(100);
    cache.set('empty', new Uint8Array(0));
    expect(cache.get('empty')).toEqual(new Uint8Array(0));
  });
});

describe('metadata proxy instance cache expiry', () => {
  it('asks again once a found instance or an absence has outlived its own TTL on the given clock', async () => {
    let now = 1_000;
    const cache = createInstanceCache({
      ttlMs: 60_000,
      negativeTtlMs: 1000,
      maxEntries: 10,
      clock: () => now,
    });
    const asked: string[] = [];
    const lookup = (address: string): Promise<LookupAnswer> => {
      asked.push(address);
      return Promise.resolve(address === 'known' ? { instanceId: 'i-1' } : { instanceId: undefined });
    };
    await cache.resolve('known', lookup);
    await cache.resolve('nobody', lookup);
    now += 999;
    await cache.resolve('known', lookup);
    await cache.resolve('nobody', lookup);
    expect(asked).toEqual(['known', 'nobody']);
    now += 2;
    expect(await cache.resolve('nobody', lookup)).toEqual({ instanceId: undefined });
    await cache.resolve('known', lookup);
    expect(asked).toEqual(['known', 'nobody', 'nobody']);
    now += 60_000;
    await cache.resolve('known', lookup);
    expect(asked).toEqual(['known', 'nobody', 'nobody', 'known']);
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 4 });
  });

  it('caches nothing when it may hold no entries', async () => {
    const cache = createInstanceCache({ ttlMs: 60_000, negativeTtlMs: 1000, maxEntries: 0, clock: () => 0 });
    let calls = 0;
    const lookup = (): Promise<LookupAnswer> => {
      calls += 1;
      return Promise.resolve({ instanceId: 'i-1' });
    };
    await cache.resolve('a', lookup);
    await cache.resolve('a', lookup);
    expect(calls).toBe(2);
    expect(cache.stats().size).toBe(0);
  });
});

describe('byte-bounded maps (createBoundedMap)', () => {
  it('remember absence as null, and drop the least recently used beyond the budget', () => {
    const map = createBoundedMap<{ name: string }>(600);
    map.set('gone', null);
    expect(map.get('gone')).toBeNull();
    expect(map.get('never')).toBeUndefined();
    for (let i = 0; i < 20; i++) map.set(`k${i}`, { name: `value-${i}` });
    expect(map.get('k19')).toEqual({ name: 'value-19' });
    expect(map.get('k0')).toBeUndefined();
    expect(map.get('gone')).toBeUndefined();
  });

  it('keeps nothing with a budget of 0, and nothing larger than the whole budget', () => {
    const none = createBoundedMap<string>(0);
    none.set('a', 'b');
    expect(none.get('a')).toBeUndefined();
    const small = createBoundedMap<string>(200);
    small.set('big', 'x'.repeat(500));
    expect(small.get('big')).toBeUndefined();
    small.set('fits', 'x');
    expect(small.get('fits')).toBe('x');
  });

  it('estimate strings, binary and nesting no lower than their payload', () => {
    expect(approximateBytes('x'.repeat(100))).toBeGreaterThanOrEqual(100);
    expect(approximateBytes(new Uint8Array(1000))).toBeGreaterThanOrEqual(1000);
    expect(approximateBytes({ a: { b: ['y'.repeat(50)] } })).toBeGreaterThan(
      approximateBytes('y'.repeat(50)),
    );
  });
});
