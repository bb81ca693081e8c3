import { LineCounter, parseDocument } from 'yaml';
import type { ValidationIssue } from './ignition.ts';

/**
 * coreos-cloudinit decides by the first line whether user data is a cloud-config, and silently skips a
 * file it cannot parse, so both are checked at upload rather than discovered at boot.
 */
export function validateCloudConfig(text: string): ValidationIssue[] {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  if (firstLine.trimEnd() !== '#cloud-config') {
    return [{ path: '$.cloudConfig', message: 'expected the first line to be "#cloud-config"' }];
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const issues: ValidationIssue[] = document.errors.map((error) => {
    const line = lineCounter.linePos(error.pos[0]);
    const where = `line ${line.line} column ${line.col}: `;
    return { path: '$.cloudConfig', message: `not valid YAML: ${where}${error.message.split('\n')[0]}` };
  });
  if (issues.length > 0) return issues;
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
