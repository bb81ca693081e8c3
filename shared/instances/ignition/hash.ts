/**
 * `verification.hash` of a resource: `<function>-<hex digest>`. Ignition compares the digest after it
 * fetches the resource, so a malformed value would fail the boot; the functions a spec version knows are
 * passed in by it.
 */

const hexDigits: Record<string, number> = { sha512: 128, sha256: 64 };

const example = (fn: string): string => `"${fn}-<${hexDigits[fn] ?? 0} hex digits>"`;

export function verificationHash(functions: readonly string[]): (value: string) => string | undefined {
  const allowed = functions.map(example).join(' or ');
  return (value) => {
    const dash = value.indexOf('-');
    const fn = dash < 0 ? value : value.slice(0, dash);
    const sum = dash < 0 ? '' : value.slice(dash + 1);
    const digits = functions.includes(fn) ? hexDigits[fn] : undefined;
    if (digits === undefined) return `unrecognized hash function "${fn}": expected ${allowed}`;
    if (sum.length !== digits || !/^[0-9a-fA-F]*$/.test(sum)) {
      return `expected ${fn}- followed by ${digits} hex digits`;
    }
    return undefined;
  };
}
