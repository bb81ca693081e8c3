/**
 * zod's issues in cldist's words: a JSONPath in the `$.a.b[0]` style and a sentence that says what
 * Ignition wants there. Values are read from the config itself, so zod need not copy them into issues.
 */

import type * as z from 'zod';
import { describeType, type IgnitionValidation, isRecord, present, render } from './issues.ts';
import type { SpecParts } from './spec.ts';
import { judgeUnknownKey, type UnknownKeyPolicy } from './unknown-keys.ts';
import { warningParams } from './zod-kit.ts';

const typeNames: Record<string, string> = {
  string: 'a string',
  number: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  object: 'an object',
};

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const part of path) {
    if (Array.isArray(node) && typeof part === 'number') node = node[part];
    else if (isRecord(node) && typeof part === 'string') node = node[part];
    else return undefined;
  }
  return node;
}

export interface IssueContext {
  config: unknown;
  declared: SpecParts;
  unknownKeys: UnknownKeyPolicy;
}

/** Adds each of zod's `issues` to `out` as an error or a warning. */
export function collectIssues(
  issues: readonly z.core.$ZodIssue[],
  context: IssueContext,
  out: Pick<IgnitionValidation, 'errors' | 'warnings'>,
): void {
  for (const issue of issues) {
    switch (issue.code) {
      case 'unrecognized_keys': {
        const holder = valueAt(context.config, issue.path);
        for (const key of issue.keys) {
          const value = isRecord(holder) ? holder[key] : undefined;
          const found = { path: issue.path as (string | number)[], key, value };
          const verdict = judgeUnknownKey(found, context.declared, context.unknownKeys);
          if (verdict === undefined) continue;
          const target = verdict.severity === 'error' ? out.errors : out.warnings;
          target.push({ path: render([...issue.path, key]), message: verdict.message });
        }
        break;
      }
      case 'invalid_type': {
        const value = valueAt(context.config, issue.path);
        // A missing field is "required"; a null list entry is just the wrong type.
        const missing = !present(value) && typeof issue.path.at(-1) === 'string';
        const message = !missing
          ? `expected ${typeNames[issue.expected] ?? issue.expected}, got ${describeType(value)}`
          : 'is required';
        out.errors.push({ path: render(issue.path), message });
        break;
      }
      case 'custom': {
        const warning = issue.params?.severity === warningParams.severity;
        (warning ? out.warnings : out.errors).push({ path: render(issue.path), message: issue.message });
        break;
      }
      default:
        out.errors.push({ path: render(issue.path), message: issue.message });
    }
  }
}
