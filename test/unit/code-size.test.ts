import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';

/**
 * The size rules of the product code (`shared/`, `local/`, `functions/`, `cdk/`): no file over 400 lines
 * and no function, method, accessor, constructor or arrow over 80 lines, both counted from the first line
 * of code to the last, comments before it left out. A function's lines include those of the functions
 * nested in it, so a long closure fails as a whole. The only exceptions are the files named, with a
 * reason, in the size exceptions table of docs/architecture.md; an exception that is no longer needed
 * fails too, so the table stays true.
 */

const roots = ['shared', 'local', 'functions', 'cdk'];
const maxFileLines = 400;
const maxFunctionLines = 80;

function productFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(projectRoot, dir), { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...productFiles(path));
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

interface FunctionSize {
  name: string;
  line: number;
  lines: number;
}

function nameOf(node: ts.Node, source: ts.SourceFile): string {
  if (
    (ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node) ||
      ts.isFunctionExpression(node)) &&
    node.name !== undefined
  ) {
    return node.name.getText(source);
  }
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent !== undefined && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent))) {
    return parent.name.getText(source);
  }
  if (parent !== undefined && ts.isPropertyDeclaration(parent)) return parent.name.getText(source);
  return '(anonymous)';
}

/** Every function-like node of a source text with its length in lines. */
function functionSizes(fileName: string, text: string): FunctionSize[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const sizes: FunctionSize[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)
    ) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      sizes.push({ name: nameOf(node, source), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sizes;
}

/** Lines of a file, a final newline not counting as one more. */
function lineCount(text: string): number {
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}

const exceptionsHeading = '## Size exceptions';

/** The files named in the first column of the size exceptions table, with their reasons. */
function sizeExceptions(doc: string): Map<string, string> {
  const start = doc.indexOf(exceptionsHeading);
  if (start === -1) throw new Error(`docs/architecture.md needs a "${exceptionsHeading}" section`);
  const section = doc.slice(start + exceptionsHeading.length).split(/\n## /)[0] ?? '';
  const exceptions = new Map<string, string>();
  for (const row of section.split('\n')) {
    const cells = row.split('|').map((cell) => cell.trim());
    const file = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (file !== undefined) exceptions.set(file, cells[2] ?? '');
  }
  return exceptions;
}

interface Finding {
  file: string;
  problem: string;
}

function findings(): Finding[] {
  const found: Finding[] = [];
  for (const file of roots.flatMap((root) => productFiles(root))) {
    const text = readFileSync(join(projectRoot, file), 'utf8');
    const lines = lineCount(text);
    if (lines > maxFileLines) found.push({ file, problem: `${lines} lines (at most ${maxFileLines})` });
    for (const fn of functionSizes(file, text)) {
      if (fn.lines > maxFunctionLines) {
        found.push({
          file,
          problem: `${fn.name} at line ${fn.line} is ${fn.lines} lines (at most ${maxFunctionLines})`,
        });
      }
    }
  }
  return found;
}

describe('size of the product code', () => {
  const exceptions = sizeExceptions(readFileSync(join(projectRoot, 'docs/architecture.md'), 'utf8'));
  const found = findings();

  it(`has no file over ${maxFileLines} lines and no function over ${maxFunctionLines}, but the listed exceptions`, () => {
    const unexcused = found
      .filter((finding) => !exceptions.has(finding.file))
      .map((finding) => `${finding.file}: ${finding.problem}`);
    expect(
      unexcused,
      'split the file or function, or (generated and table-only files only) add it with its reason to the ' +
        'size exceptions table in docs/architecture.md',
    ).toEqual([]);
  });

  it('lists only exceptions that exist, are needed and give a reason', () => {
    const stale = [...exceptions]
      .filter(([file, reason]) => reason === '' || !found.some((finding) => finding.file === file))
      .map(([file]) => file);
    expect(stale, 'remove these rows from the size exceptions table in docs/architecture.md').toEqual([]);
  });
});

describe('the size measures themselves', () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');

  it('counts a function from its first line of code to its last, leaving out the comment before it', () => {
    const text = `/**\n * doc\n */\nexport function f() {\n${body(3)}\n}\n`;
    expect(functionSizes('f.ts', text)).toEqual([{ name: 'f', line: 4, lines: 5 }]);
  });

  it('finds arrows, methods, constructors and accessors, nested ones inside their parents', () => {
    const text = [
      'const g = () => {',
      '  const inner = function named() { return 1; };',
      '  return inner;',
      '};',
      'class C {',
      '  constructor() {}',
      '  get x() { return 1; }',
      '  m() {',
      '    return [1].map((n) => n);',
      '  }',
      '}',
      '',
    ].join('\n');
    expect(functionSizes('g.ts', text)).toEqual([
      { name: 'g', line: 1, lines: 4 },
      { name: 'named', line: 2, lines: 1 },
      { name: 'constructor', line: 6, lines: 1 },
      { name: 'x', line: 7, lines: 1 },
      { name: 'm', line: 8, lines: 3 },
      { name: '(anonymous)', line: 9, lines: 1 },
    ]);
  });

  it('fails a function of 81 lines and passes one of 80', () => {
    const sizes = functionSizes('h.ts', `function a() {\n${body(78)}\n}\nfunction b() {\n${body(79)}\n}\n`);
    expect(sizes.map((size) => size.lines)).toEqual([80, 81]);
  });

  it('counts file lines without the final newline', () => {
    expect(lineCount('a\nb\n')).toBe(2);
    expect(lineCount('a\nb')).toBe(2);
  });

  it('reads the exceptions table: backquoted file, then its reason', () => {
    const doc = [
      '# A',
      '## Size exceptions',
      '| file | why |',
      '|---|---|',
      '| `shared/x.ts` | generated |',
      '| `shared/y.ts` |  |',
      '## Next',
      '| `shared/z.ts` | not in the section |',
    ].join('\n');
    expect([...sizeExceptions(doc)]).toEqual([
      ['shared/x.ts', 'generated'],
      ['shared/y.ts', ''],
    ]);
    expect(() => sizeExceptions('# none')).toThrow(/Size exceptions/);
  });
});
