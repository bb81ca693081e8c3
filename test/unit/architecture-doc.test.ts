import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  architectureDocPath,
  drawnEdges,
  importGraph,
  moduleOf,
  renderDiagram,
  replaceDiagram,
} from '../../tools/architecture-doc.ts';

describe('docs/architecture.md module diagram', () => {
  it('is what the imports of the product code say (npm run docs:architecture regenerates it)', async () => {
    const doc = await readFile(architectureDocPath, 'utf8');
    expect(replaceDiagram(doc, renderDiagram(await importGraph()))).toBe(doc);
  });

  it('groups files by their folder one level below the top', () => {
    expect(moduleOf('shared/mirror/poller.ts')).toBe('shared/mirror');
    expect(moduleOf('local/serve/http/routes.ts')).toBe('local/serve');
    expect(moduleOf('shared/config.ts')).toBe('shared/config');
  });

  it('draws no arrow a longer path implies, and none into a foundation module', () => {
    const graph = new Map([
      ['local/a', new Set(['shared/b', 'shared/c', 'shared/errors'])],
      ['shared/b', new Set(['shared/c'])],
      ['shared/c', new Set<string>()],
    ]);
    expect(drawnEdges(graph)).toEqual([
      ['local/a', 'shared/b'],
      ['shared/b', 'shared/c'],
    ]);
  });

  it('refuses a doc without both markers, in order', () => {
    expect(() => replaceDiagram('# Architecture\n', 'x')).toThrow(/needs the markers/);
  });
});
