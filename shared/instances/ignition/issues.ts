/** Issues as the API and the CLI show them: a JSONPath and a sentence. */

export interface ValidationIssue {
  /** JSONPath of the offending value, e.g. `$.storage.files[0].contents.source`. */
  path: string;
  message: string;
}

export interface IgnitionValidation {
  /** The declared `ignition.version`, when one could be read. */
  version?: string;
  errors: ValidationIssue[];
  warnings: ValidationIssue[];
}

export type PathPart = string | number;

/**
 * Where an Ignition rule reports what it found, relative to the value it checks. A warning is something
 * Ignition accepts but does not do as written.
 */
export interface Report {
  error(path: readonly PathPart[], message: string): void;
  warning(path: readonly PathPart[], message: string): void;
}

export function render(path: readonly PropertyKey[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  return `a ${typeof value}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Ignition (Go) reads a JSON `null` as an absent optional field. */
export function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** Keeps a user's value short enough to quote in a message. */
export function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}

/** The `path` strings of every entry of `entries` that has one, by index (undefined where none). */
export function pathsOf(entries: unknown): (string | undefined)[] {
  if (!Array.isArray(entries)) return [];
  return entries.map((entry: unknown) =>
    isRecord(entry) && typeof entry.path === 'string' ? entry.path : undefined,
  );
}

/** One line per issue, for error messages and the CLI. */
export function formatValidationIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n');
}
