/**
 * Keys a spec version does not have. Ignition ignores them, so a misspelt `sshAuthorizedKeys` boots a
 * machine nobody can log in to: they are warnings, or errors when the operator sets
 * `api.unknownIgnitionKeys` to `reject`, with the nearest key of the declared version as a hint. A key
 * that a newer spec version has is always an error: Ignition would silently drop what the user asked for.
 */

import * as z from 'zod';
import { nearestName } from '../../nearest-name.ts';
import { type PathPart, present } from './issues.ts';
import type { SpecParts } from './spec.ts';
import { schemaFor, specVersions } from './spec-versions.ts';

export type UnknownKeyPolicy = 'warn' | 'reject';

/** Where an object sits in a config, with array indices dropped: `storage/files/[]/contents`. */
function place(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? '[]' : String(part))).join('/');
}

/** Every object of a schema by place, with the keys it has. */
function keyTable(schema: z.ZodType): Map<string, readonly string[]> {
  const table = new Map<string, readonly string[]>();
  const visit = (node: z.ZodType, at: string): void => {
    if (node instanceof z.ZodOptional || node instanceof z.ZodNullable) {
      visit(node.unwrap() as z.ZodType, at);
    } else if (node instanceof z.ZodArray) {
      visit(node.element as z.ZodType, at === '' ? '[]' : `${at}/[]`);
    } else if (node instanceof z.ZodObject) {
      const shape = node.shape as Record<string, z.ZodType>;
      table.set(at, Object.keys(shape));
      for (const [key, child] of Object.entries(shape)) visit(child, at === '' ? key : `${at}/${key}`);
    }
  };
  visit(schema, '');
  return table;
}

const tables = new Map<string, Map<string, readonly string[]>>();

function keysAt(parts: SpecParts, at: string): readonly string[] {
  let table = tables.get(parts.version);
  if (table === undefined) {
    table = keyTable(schemaFor(parts));
    tables.set(parts.version, table);
  }
  return table.get(at) ?? [];
}

export interface UnknownKey {
  /** The object holding the key, and the key. */
  path: readonly PathPart[];
  key: string;
  value: unknown;
}

export type Verdict = { severity: 'error' | 'warning'; message: string } | undefined;

/**
 * What an unrecognised key of the declared version means: a field of a newer version (an error, unless
 * it is null, which Ignition reads as absent), or a key no version has (warned or refused by `policy`).
 */
export function judgeUnknownKey(found: UnknownKey, declared: SpecParts, policy: UnknownKeyPolicy): Verdict {
  const at = place(found.path);
  const index = specVersions.indexOf(declared);
  const newer = specVersions.slice(index + 1).find((parts) => keysAt(parts, at).includes(found.key));
  if (newer !== undefined) {
    if (!present(found.value)) return undefined;
    return { severity: 'error', message: `needs spec version ${newer.version} or later` };
  }
  const nearest = nearestName(found.key, keysAt(declared, at));
  const hint = nearest === undefined ? '' : `; did you mean \`${nearest}\`?`;
  if (policy === 'reject') {
    return {
      severity: 'error',
      message: `unknown key, refused because unknown Ignition keys are rejected${hint}`,
    };
  }
  return { severity: 'warning', message: `unknown key, Ignition ignores it${hint}` };
}
