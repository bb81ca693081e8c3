/**
 * The few zod building blocks the spec versions are written with. Shapes are strict objects: a key the
 * declared spec version does not have is an `unrecognized_keys` issue, which `zod-issues.ts` turns into a
 * warning, an error, or "needs a newer spec version". Ignition's own rules run as zod checks, written
 * against a plain `Report` so that they know nothing of zod.
 */

import * as z from 'zod';
import { isRecord, type PathPart, type Report } from './issues.ts';

/** Marks a custom issue as a warning: Ignition accepts the value but does not do what it says. */
export const warningParams = { severity: 'warning' } as const;

export type Rule<T> = (value: T, report: Report) => void;
export type ObjectRule = Rule<Record<string, unknown>>;

/** Reports into a zod check; a class, so that a check allocates no closures per value. */
class ZodReport implements Report {
  constructor(private readonly ctx: z.RefinementCtx<unknown>) {}
  error(path: readonly PathPart[], message: string): void {
    this.ctx.addIssue({ code: 'custom', path: [...path], message });
  }
  warning(path: readonly PathPart[], message: string): void {
    this.ctx.addIssue({ code: 'custom', path: [...path], message, params: warningParams });
  }
}

/** A string checked by `problems`: each returns why the value is refused, or undefined. */
export function text(...problems: ((value: string) => string | undefined)[]): z.ZodString {
  const schema = z.string();
  if (problems.length === 0) return schema;
  return schema.superRefine((value, ctx) => {
    for (const problem of problems) {
      const message = problem(value);
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    }
  });
}

/** A string whose rule may report warnings or errors at the value itself. */
export function textWith(rule: Rule<string>): z.ZodString {
  return z.string().superRefine((value, ctx) => rule(value, new ZodReport(ctx)));
}

/** Ignition's integers (Go `int`): any JSON number without a fraction. */
export function integer(rule?: Rule<number>): z.ZodNumber {
  return z.number().superRefine((value, ctx) => {
    if (!Number.isInteger(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected an integer, got a number' });
      return;
    }
    rule?.(value, new ZodReport(ctx));
  });
}

export const nonNegative: Rule<number> = (value, report) => {
  if (value < 0) report.error([], `expected 0 or more, got ${value}`);
};

export const bool = z.boolean();

/** Optional in Ignition's sense: absent or null. */
export function opt<T extends z.ZodType>(schema: T): z.ZodOptional<z.ZodNullable<T>> {
  return schema.nullish();
}

/**
 * A strict object with cross-field rules. The rules run even when a field failed its own check (as long as
 * the value is an object), so that one config shows every problem at once; they must not assume types.
 */
export function object<S extends z.ZodRawShape>(
  shape: S,
  ...rules: ObjectRule[]
): z.ZodObject<S, z.core.$strict> {
  const schema = z.strictObject(shape);
  if (rules.length === 0) return schema;
  return schema.superRefine(
    (value, ctx) => {
      const report = new ZodReport(ctx);
      for (const rule of rules) rule(value as Record<string, unknown>, report);
    },
    { when: (payload) => isRecord(payload.value) },
  );
}

export interface Uniqueness {
  /** The identity of an entry, or undefined when it has none to compare. */
  key: (item: unknown) => string | undefined;
  /** What the identity is called in the message, e.g. "user name". */
  name: string;
}

/** A list whose entries Ignition refuses to see twice (by `unique.key`), reported at the repeat. */
export function list<T extends z.ZodType>(item: T, unique?: Uniqueness): z.ZodArray<T> {
  const schema = z.array(item);
  if (unique === undefined) return schema;
  return schema.superRefine(
    (items, ctx) => {
      const seen = new Set<string>();
      (items as unknown[]).forEach((entry, index) => {
        const key = unique.key(entry);
        if (key === undefined) return;
        if (seen.has(key))
          ctx.addIssue({ code: 'custom', path: [index], message: `duplicate ${unique.name} "${key}"` });
        seen.add(key);
      });
    },
    { when: (payload) => Array.isArray(payload.value) },
  );
}

export const byValue = (name: string): Uniqueness => ({
  key: (item) => (typeof item === 'string' ? item : undefined),
  name,
});

export const byField = (field: string, name: string): Uniqueness => ({
  key: (item) => (isRecord(item) && typeof item[field] === 'string' ? item[field] : undefined),
  name,
});

export const strings = list(z.string());
