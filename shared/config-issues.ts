import * as z from 'zod';
import { nearestName } from './nearest-name.ts';

/** One thing wrong (or doubtful) in a config, at a dotted field path such as `keyring.files`. */
export interface ConfigProblem {
  path: string;
  message: string;
  /** The valid name the operator most likely meant. */
  suggestion?: string;
}

/** `boards.0: "amd64-us" is not a board Flatcar publishes; did you mean `amd64-usr`?` */
export function formatProblem(problem: ConfigProblem): string {
  const hint = problem.suggestion === undefined ? '' : `; did you mean \`${problem.suggestion}\`?`;
  return `${problem.path === '' ? '(top level)' : problem.path}: ${problem.message}${hint}`;
}

/** Wrappers that do not change which keys an object accepts: defaults, optionals, transforms. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (let depth = 0; depth < 16; depth++) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodOptional) {
      current = current.unwrap() as z.ZodType;
    } else if (current instanceof z.ZodPipe) {
      current = current.in as z.ZodType;
    } else {
      return current;
    }
  }
  return current;
}

/**
 * The keys an object at `path` accepts, or nothing when the path leads elsewhere. Every option of a
 * union counts, so a misspelt key of `store` is matched against the keys of every store kind.
 */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType[] = [unwrap(schema)];
  for (const segment of path) {
    const next: z.ZodType[] = [];
    for (const node of current.flatMap((n) => (n instanceof z.ZodUnion ? n.options : [n]))) {
      if (node instanceof z.ZodArray && typeof segment === 'number') {
        next.push(unwrap(node.element as z.ZodType));
      } else if (node instanceof z.ZodObject && typeof segment === 'string') {
        const child = node.shape[segment] as z.ZodType | undefined;
        if (child !== undefined) next.push(unwrap(child));
      }
    }
    current = next;
  }
  const keys = current
    .flatMap((n) => (n instanceof z.ZodUnion ? n.options : [n]))
    .flatMap((n) => (n instanceof z.ZodObject ? Object.keys(n.shape) : []));
  return [...new Set(keys)];
}

/** A key that is not a plain word is quoted, so `" "` or `a.b` cannot be misread as a path. */
function segment(part: PropertyKey): string {
  const text = String(part);
  return /^[A-Za-z0-9_-]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * Zod's issues as one problem per bad field. An unknown key of a strict object becomes one problem per key,
 * at the key's own path, with the nearest key `schema` accepts there when one is close enough.
 */
export function describeIssues(error: z.ZodError, root = '', schema?: z.ZodType): ConfigProblem[] {
  const join = (parts: readonly PropertyKey[]) =>
    [root, ...parts.map(segment)].filter((p) => p !== '').join('.');
  return error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code !== 'unrecognized_keys' || schema === undefined) {
      return [{ path: join(issue.path), message: issue.message }];
    }
    const known = keysAt(schema, issue.path);
    return issue.keys.map((key) => {
      const suggestion = nearestName(key, known);
      return {
        path: join([...issue.path, key]),
        message: 'unknown key',
        ...(suggestion === undefined ? {} : { suggestion }),
      };
    });
  });
}

/** Render zod issues as one line per bad field: `channels.0.baseUrl: expected an http(s) URL…`. */
export function formatIssues(error: z.ZodError, root = '', schema?: z.ZodType): string {
  return describeIssues(error, root, schema).map(formatProblem).join('\n');
}
