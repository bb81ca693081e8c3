import { describe, expect, it } from 'vitest';
import { createInstanceCache, type LookupAnswer } from '../../local/metadata-proxy/instance-cache.ts';
import { parseApiUrl, parseListen } from '../../local/metadata-proxy/options.ts';
import {
  checkPath,
  isRefusedTokenRequest,
  normalizeAddress,
} from '../../local/metadata-proxy/request-rules.ts';
import { parseSecret } from '../../local/metadata-proxy/secret-file.ts';

describe('metadata proxy instance cache', () => {
  const found = (id: string): Promise<LookupAnswer> => Promise.resolve({ instanceId: id });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const cache = createInstanceCache({ ttlMs: 60_000, negativeTtlMs: 1000, maxEntries: 2, clock: () => 0 });
    const asked: string[] = [];
    const lookup = (address: string) => {
      asked.push(address);
      return found(`i-${address}`);
    };
    await cache.resolve('a', lookup);
    await cache.resolve('b', lookup);
    await cache.resolve('a', lookup); // a is now the most recent
    await cache.resolve('c', lookup); // evicts b
    expect(cache.stats().size).toBe(2);
    await cache.resolve('a', lookup);
    await cache.resolve('b', lookup);
    expect(asked).toEqual(['a', 'b', 'c', 'b']);
  });

  it('caches no failure, and shares one lookup among concurrent callers', async () => {
    const cache = createInstanceCache({ ttlMs: 60_000, negativeTtlMs: 1000, maxEntries: 10, clock: () => 0 });
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('down'));
    };
    const results = await Promise.allSettled([cache.resolve('a', failing), cache.resolve('a', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    expect(await cache.resolve('a', () => found('i-a'))).toEqual({ instanceId: 'i-a' });
  });

  it('with a TTL of 0 asks every time', async () => {
    const cache = createInstanceCache({ ttlMs: 0, negativeTtlMs: 0, maxEntries: 10, clock: () => 0 });
    let calls = 0;
    const lookup = () => {
      calls += 1;
      return found('i-a');
    };
    await cache.resolve('a', lookup);
    await cache.resolve('a', lookup);
    expect(calls).toBe(2);
  });
});

describe('metadata proxy request rules', () => {
  it('accepts the paths real clients ask for, dropping the query', () => {
    for (const path of [
      '/openstack/latest/user_data',
      '/latest/meta-data/public-keys/0/openssh-key',
      '/2009-04-04/user-data',
      '/latest/api/token',
    ]) {
      expect(checkPath(`${path}?x=1`)).toEqual({ ok: true, path });
    }
  });

  it('refuses climbing, encoded slashes and malformed escapes', () => {
    for (const path of ['/..', '/a/%2e%2E/b', '/a%2fb', '/a%5cb', '/%zz', 'relative', '', '/a b']) {
      expect(checkPath(path).ok, path).toBe(false);
    }
    expect(checkPath(undefined).ok).toBe(false);
  });

  it('refuses a token PUT with X-Forwarded-For only', () => {
    expect(isRefusedTokenRequest('PUT', '/latest/api/token', { 'x-forwarded-for': '1.2.3.4' })).toBe(true);
    expect(isRefusedTokenRequest('PUT', '/latest/api/token', {})).toBe(false);
    expect(isRefusedTokenRequest('GET', '/latest/meta-data/', { 'x-forwarded-for': '1.2.3.4' })).toBe(false);
  });

  it('reads IPv4-mapped peers as IPv4 and drops an IPv6 zone', () => {
    expect(normalizeAddress('::ffff:169.254.10.7')).toBe('169.254.10.7');
    expect(normalizeAddress('fe80::1')).toBe('fe80::1');
    expect(normalizeAddress('fe80::7%br0')).toBe('fe80::7');
  });

  it("signs with the first secret of a file in the API's format (comments, blank lines, old secret after)", () => {
    const current = 'new-secret-0123456789';
    const previous = 'old-secret-0123456789';
    expect(parseSecret(`# rotated today\n\n  ${current}  \n${previous}\n`, 'f')).toBe(current);
    expect(() => parseSecret(`${current}\nshort\n`, 'f')).toThrow(
      /--secret-file f: secret 2 has 5 characters/,
    );
  });

  it('parses --listen and --api as documented', () => {
    expect(parseListen('169.254.169.254:80')).toEqual({ host: '169.254.169.254', port: 80 });
    expect(parseListen('[fe80::a9fe:a9fe]:80')).toEqual({ host: 'fe80::a9fe:a9fe', port: 80 });
    expect(() => parseListen('fe80::1:80')).toThrow(/--listen .*\[::1\]:8775/);
    expect(parseApiUrl('https://cldist.example.net/base/').pathname).toBe('/base');
    expect(() => parseApiUrl('https://cldist.example.net/?a=1')).toThrow(/--api .*query/);
  });
});
