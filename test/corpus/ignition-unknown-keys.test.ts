import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { validateIgnition } from '../../shared/instances/ignition.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';
import { type Path, render, richConfig, richVersions } from './ignition-samples.ts';

afterAll(() => {
  reportTallies('ignition-unknown-keys');
});

/** Objects of the rich config where an operator types keys by hand. */
const places: Path[] = [
  [],
  ['ignition'],
  ['passwd', 'users', 0],
  ['storage', 'files', 0],
  ['storage', 'files', 0, 'contents'],
  ['systemd', 'units', 0],
];

function objectAt(config: Record<string, unknown>, path: Path): Record<string, unknown> {
  let node: unknown = config;
  for (const part of path) node = (node as Record<string | number, unknown>)[part];
  return node as Record<string, unknown>;
}

/** A one-edit typo of `word`: a dropped, doubled, swapped or replaced character. */
const typoOf = (word: string) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: word.length - 1 }),
      fc.constantFrom(0, 1, 2, 3),
      fc.constantFrom('x', 'q', 's'),
    )
    .map(([at, kind, letter]) => {
      if (kind === 0) return word.slice(0, at) + word.slice(at + 1);
      if (kind === 1) return word.slice(0, at) + (word[at] ?? '') + word.slice(at);
      if (kind === 2 && at + 1 < word.length) {
        return word.slice(0, at) + (word[at + 1] ?? '') + (word[at] ?? '') + word.slice(at + 2);
      }
      return word.slice(0, at) + letter + word.slice(at + 1);
    });

const cases = fc
  .tuple(fc.constantFrom(...richVersions), fc.constantFrom(...places))
  .chain(([version, place]) => {
    const known = Object.keys(objectAt(richConfig(version), place)).filter((key) => key.length >= 3);
    const randomKey = fc
      .string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCXYZ_'), minLength: 1, maxLength: 20 })
      .map((key) => ({ key, from: undefined as string | undefined }));
    const typo = fc
      .constantFrom(...known)
      .chain((word) => typoOf(word).map((key) => ({ key, from: word as string | undefined })));
    return fc.record({
      version: fc.constant(version),
      place: fc.constant(place),
      typed: fc.oneof(typo, randomKey),
    });
  });

describe('bad-input corpus: unknown Ignition keys, warned and refused', () => {
  it('each unknown key is a warning by default and an error under reject, at the same path, with a real suggestion', async () => {
    await runCorpus('ignition unknown keys', cases, ({ version, place, typed }) => {
      const config = richConfig(version);
      const target = objectAt(config, place);
      const known = Object.hasOwn(target, typed.key);
      target[typed.key] = known ? target[typed.key] : 'x';
      const warned = validateIgnition(config, { allowLegacy: false });
      const refused = validateIgnition(config, { allowLegacy: false, unknownKeys: 'reject' });
      expect(warned.errors).toEqual([]);
      expect(refused.warnings).toEqual([]);
      if (known) {
        expect(warned.warnings).toEqual([]);
        expect(refused.errors).toEqual([]);
        return;
      }
      const path = render([...place, typed.key]);
      expect(warned.warnings.map((issue) => issue.path)).toEqual([path]);
      expect(refused.errors.map((issue) => issue.path)).toEqual([path]);
      const message = refused.errors[0]?.message ?? '';
      expect(message).toMatch(/^unknown key, refused because unknown Ignition keys are rejected/);
      const suggested = /; did you mean `([^`]+)`\?$/.exec(message)?.[1];
      if (typed.from !== undefined)
        expect(suggested, `${typed.key} is one edit from ${typed.from}`).toBeDefined();
      if (suggested !== undefined) {
        const fixed = richConfig(version);
        expect(Object.keys(objectAt(fixed, place))).toContain(suggested);
      }
    });
  });
});
