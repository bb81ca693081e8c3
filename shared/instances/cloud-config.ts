import { type Document, isMap, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { ValidationIssue } from './ignition.ts';

/**
 * The first duplicate key of any mapping, in one pass with a set per mapping. The `yaml` library's own
 * `uniqueKeys` compares each new key with every earlier one of its mapping, which is quadratic: a body of
 * a few hundred KiB held the event loop for over a minute. Keys are compared as `uniqueKeys` does: scalars
 * by value, anything else (a collection or an alias used as a key) only by identity, so never equal.
 */
function firstDuplicateKey(document: Document): { offset: number; key: string } | undefined {
  let found: { offset: number; key: string } | undefined;
  visit(document, {
    Map(_, map) {
      if (!isMap(map)) return undefined;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const value = pair.key.value;
        if (seen.has(value)) {
          found = { offset: pair.key.range?.[0] ?? 0, key: String(value) };
          return visit.BREAK;
        }
        seen.add(value);
      }
      return undefined;
    },
  });
  return found;
}

/**
 * coreos-cloudinit decides by the first line whether user data is a cloud-config, and silently skips a
 * file it cannot parse, so both are checked at upload rather than discovered at boot. Every step is
 * linear in the body, which the API caps at 1 MiB, so the work per PUT is bounded.
 */
export function validateCloudConfig(text: string): ValidationIssue[] {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  if (firstLine.trimEnd() !== '#cloud-config') {
    return [{ path: '$.cloudConfig', message: 'expected the first line to be "#cloud-config"' }];
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: false, lineCounter });
  const where = (offset: number) => {
    const line = lineCounter.linePos(offset);
    return `line ${line.line} column ${line.col}: `;
  };
  const issues: ValidationIssue[] = document.errors.map((error) => ({
    path: '$.cloudConfig',
    message: `not valid YAML: ${where(error.pos[0])}${error.message.split('\n')[0]}`,
  }));
  if (issues.length > 0) return issues;
  const duplicate = firstDuplicateKey(document);
  if (duplicate !== undefined) {
    const key = duplicate.key.length > 64 ? `${duplicate.key.slice(0, 64)}…` : duplicate.key;
    return [
      {
        path: '$.cloudConfig',
        message: `not valid YAML: ${where(duplicate.offset)}Map keys must be unique; "${key}" appears again`,
      },
    ];
  }
  let contents: unknown;
  try {
    // Aliases make YAML a graph: a missing anchor or an alias bomb must be a 400, not a crash or a hang.
    contents = document.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    return [{ path: '$.cloudConfig', message: `not valid YAML: ${(cause as Error).message.split('\n')[0]}` }];
  }
  if (contents !== null && (typeof contents !== 'object' || Array.isArray(contents))) {
    issues.push({ path: '$.cloudConfig', message: 'expected a YAML mapping at the top level' });
  }
  return issues;
}
