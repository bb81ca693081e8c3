import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { verificationHash } from '../../shared/instances/ignition/hash.ts';
import { derive } from '../../shared/instances/ignition/spec.ts';
import { specVersions, v3_0, v3_1 } from '../../shared/instances/ignition/spec-versions.ts';
import { supportedIgnitionVersions, validateIgnition } from '../../shared/instances/ignition.ts';

const v = (version: string, rest: Record<string, unknown> = {}) => ({ ignition: { version }, ...rest });

describe('Ignition spec versions, each derived from the one before', () => {
  it('lists 3.0.0 to 3.5.0 in order, and the public list agrees', () => {
    expect(specVersions.map((parts) => parts.version)).toEqual([
      '3.0.0',
      '3.1.0',
      '3.2.0',
      '3.3.0',
      '3.4.0',
      '3.5.0',
    ]);
    expect(supportedIgnitionVersions).toEqual(specVersions.map((parts) => parts.version));
  });

  it('derive adds fields without touching the version it starts from', () => {
    const before = Object.keys(v3_0.shapes.filesystem);
    const next = derive(v3_0, {
      version: '9.9.9',
      add: { filesystem: { extra: z.string() } },
    });
    expect(Object.keys(next.shapes.filesystem)).toEqual([...before, 'extra']);
    expect(Object.keys(v3_0.shapes.filesystem)).toEqual(before);
    expect(next.hashFunctions).toBe(v3_0.hashFunctions);
    expect(v3_1.hashFunctions).toEqual(['sha512', 'sha256']);
  });

  it('never drops a field: every object of a version keeps the fields of the one before', () => {
    for (const [index, parts] of specVersions.entries()) {
      const previous = specVersions[index - 1];
      if (previous === undefined) continue;
      for (const [kind, fields] of Object.entries(previous.shapes)) {
        const now = parts.shapes[kind as keyof typeof parts.shapes] ?? {};
        expect(Object.keys(now), `${parts.version} ${kind}`).toEqual(
          expect.arrayContaining(Object.keys(fields)),
        );
      }
    }
  });

  it('names the first version that has a field used too early, and ignores it when null', () => {
    const early = validateIgnition(
      v('3.3.0', { storage: { luks: [{ name: 'a', device: '/dev/sdb', cex: {} }] } }),
      {
        allowLegacy: false,
      },
    );
    expect(early.errors).toEqual([
      { path: '$.storage.luks[0].cex', message: 'needs spec version 3.5.0 or later' },
    ]);
    const nulled = validateIgnition(v('3.0.0', { kernelArguments: null }), {
      allowLegacy: false,
      unknownKeys: 'reject',
    });
    expect(nulled).toEqual({ version: '3.0.0', errors: [], warnings: [] });
  });

  it('a too-new field is an error even when unknown keys are only warned about', () => {
    const result = validateIgnition(v('3.1.0', { passwd: { users: [{ name: 'a', shouldExist: false }] } }), {
      allowLegacy: false,
      unknownKeys: 'warn',
    });
    expect(result.warnings).toEqual([]);
    expect(result.errors.map((issue) => issue.message)).toEqual(['needs spec version 3.2.0 or later']);
  });

  it('a required field given as null is missing, a null list entry has the wrong type', () => {
    const result = validateIgnition(v('3.3.0', { storage: { files: [{ path: null }, null] } }), {
      allowLegacy: false,
    });
    expect(result.errors).toEqual([
      { path: '$.storage.files[0].path', message: 'is required' },
      { path: '$.storage.files[1]', message: 'expected an object, got null' },
    ]);
  });

  it('special mode bits warn before 3.4.0 and pass from it, with no error either way', () => {
    const config = (version: string) =>
      v(version, { storage: { directories: [{ path: '/d', mode: 0o1777 }] } });
    expect(validateIgnition(config('3.3.0'), { allowLegacy: false })).toEqual({
      version: '3.3.0',
      errors: [],
      warnings: [
        {
          path: '$.storage.directories[0].mode',
          message: 'setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0',
        },
      ],
    });
    expect(validateIgnition(config('3.4.0'), { allowLegacy: false })).toEqual({
      version: '3.4.0',
      errors: [],
      warnings: [],
    });
  });

  it('a fractional number is not an Ignition integer', () => {
    const result = validateIgnition(v('3.3.0', { storage: { files: [{ path: '/a', mode: 420.5 }] } }), {
      allowLegacy: false,
    });
    expect(result.errors).toEqual([
      { path: '$.storage.files[0].mode', message: 'expected an integer, got a number' },
    ]);
  });

  it('checks hashes by the functions a version knows', () => {
    const sha512Only = verificationHash(['sha512']);
    expect(sha512Only(`sha512-${'A'.repeat(128)}`)).toBeUndefined();
    expect(sha512Only(`sha256-${'a'.repeat(64)}`)).toBe(
      'unrecognized hash function "sha256": expected "sha512-<128 hex digits>"',
    );
    expect(sha512Only('sha512')).toBe('expected sha512- followed by 128 hex digits');
    expect(verificationHash(['sha512', 'sha256'])('constructor-x')).toMatch(
      /unrecognized hash function "constructor"/,
    );
  });
});
