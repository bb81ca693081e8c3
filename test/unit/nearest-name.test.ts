import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { editDistance, nearestName } from '../../shared/nearest-name.ts';

describe('editDistance (optimal string alignment)', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
    ['sshAuthorisedKeys', 'sshAuthorizedKeys', 1],
    ['stroage', 'storage', 1],
    ['ca', 'abc', 3],
  ])('%j to %j is %i', (a, b, expected) => {
    expect(editDistance(a, b)).toBe(expected);
    expect(editDistance(b, a)).toBe(expected);
  });

  it('is a metric on small strings: zero only for equal strings, symmetric, under the longer length', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 8 });
    fc.assert(
      fc.property(word, word, (a, b) => {
        const d = editDistance(a, b);
        expect(d === 0).toBe(a === b);
        expect(editDistance(b, a)).toBe(d);
        expect(d).toBeLessThanOrEqual(Math.max(a.length, b.length));
        expect(d).toBeGreaterThanOrEqual(Math.abs(a.length - b.length));
      }),
      { numRuns: 300, seed: 20261126 },
    );
  });
});

describe('nearestName', () => {
  const keys = ['ignition', 'passwd', 'storage', 'systemd', 'kernelArguments'];

  it('finds the key a typo meant, ignoring case', () => {
    expect(nearestName('storag', keys)).toBe('storage');
    expect(nearestName('sytsemd', keys)).toBe('systemd');
    expect(nearestName('Passwd', keys)).toBe('passwd');
    expect(nearestName('kernelArgs', keys)).toBeUndefined();
  });

  it('suggests nothing for a name far from every candidate, or for the name itself', () => {
    expect(nearestName('colour', keys)).toBeUndefined();
    expect(nearestName('x', keys)).toBeUndefined();
    expect(nearestName('storage', ['storage'])).toBeUndefined();
    expect(nearestName('anything', [])).toBeUndefined();
  });

  it('prefers the closer candidate, and the earlier one on a tie', () => {
    expect(nearestName('amd64-us', ['arm64-usr', 'amd64-usr'])).toBe('amd64-usr');
    expect(nearestName('ab', ['ac', 'ad'])).toBe('ac');
  });
});
