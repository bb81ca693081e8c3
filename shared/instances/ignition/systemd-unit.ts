/**
 * systemd unit names and unit files, as Ignition checks them: it parses every unit and drop-in with
 * go-systemd's unit.Deserialize at boot and refuses the config when one does not parse.
 */

import { truncate } from './issues.ts';

const goSpace = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const isSpace = (ch: string): boolean => goSpace.test(ch);

/** Go's strings.TrimSpace (Unicode white space). */
function trimSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text[start] ?? '')) start += 1;
  while (end > start && isSpace(text[end - 1] ?? '')) end -= 1;
  return text.slice(start, end);
}

/** systemd's LINE_MAX: go-systemd refuses longer lines rather than let systemd truncate them. */
const unitLineMax = 2048;

const unitSuffixes = [
  'service',
  'socket',
  'device',
  'mount',
  'automount',
  'swap',
  'target',
  'path',
  'timer',
  'snapshot',
  'slice',
  'scope',
];

/** Why Ignition refuses this unit name (it must end in a unit type), or undefined. */
export function unitNameProblem(name: string): string | undefined {
  const suffix = name.slice(name.lastIndexOf('.') + 1);
  if (name.includes('.') && unitSuffixes.includes(suffix)) return undefined;
  return `expected a unit name ending in .${unitSuffixes.join(', .')}; got "${name}"`;
}

/** Why Ignition refuses this drop-in name (it must end in `.conf`), or undefined. */
export function dropinNameProblem(name: string): string | undefined {
  return name.endsWith('.conf') ? undefined : `expected a name ending in .conf, got "${name}"`;
}

/** The unit text as code points, read line by line the way go-systemd's lexer reads it. */
class UnitLexer {
  pos = 0;
  readonly chars: string[];
  constructor(text: string) {
    this.chars = [...text];
  }
  next(): string | undefined {
    const ch = this.chars[this.pos];
    this.pos += 1;
    return ch;
  }
  toEol(): { line: string; eof: boolean } {
    let end = this.pos;
    while (end < this.chars.length && this.chars[end] !== '\n') end += 1;
    const eof = end >= this.chars.length;
    let line = this.chars.slice(this.pos, end).join('');
    this.pos = eof ? end : end + 1;
    if (eof && line.endsWith('\r')) line = line.slice(0, -1);
    return { line, eof };
  }
  /** A comment runs on over lines that end in a backslash (after one optional trailing space). */
  skipComment(): void {
    for (;;) {
      let { line } = this.toEol();
      if (line.endsWith(' ')) line = line.slice(0, -1);
      if (!line.endsWith('\\')) return;
    }
  }
  sectionHeader(): string | undefined {
    const close = this.chars.indexOf(']', this.pos);
    if (close < 0) return 'unable to find end of section';
    const name = this.chars.slice(this.pos, close).join('');
    this.pos = close + 1;
    const garbage = trimSpace(this.toEol().line);
    if (garbage !== '') return `found garbage after section name [${name}]: "${truncate(garbage)}"`;
    return undefined;
  }
  /** An option: a name up to "=", then a value that continues over lines ending in a backslash. */
  option(first: string): string | undefined {
    let c: string | undefined = first;
    while (c !== '=') {
      if (c === undefined) return 'unexpected end of file in an option name (no "=")';
      if (c === '\n' || c === '\r')
        return 'unexpected newline encountered while parsing option name (no "=")';
      c = this.next();
    }
    for (;;) {
      const { line, eof } = this.toEol();
      if (trimSpace(line) === '' || !line.endsWith('\\') || eof) return undefined;
    }
  }
}

/**
 * Why a unit file would not parse, following go-systemd's unit.Deserialize. Text before the first section
 * is skipped as it does; an unterminated section header, text after one, or an option line without "="
 * is an error.
 */
export function unitContentProblem(text: string): string | undefined {
  for (const line of text.split(/[\r\n]/)) {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (bytes >= unitLineMax) return `line too long (${bytes} bytes; max ${unitLineMax - 1})`;
  }
  const lexer = new UnitLexer(text);
  let inSection = false;
  for (;;) {
    const ch = lexer.next();
    if (ch === undefined) return undefined;
    let problem: string | undefined;
    if (ch === '[') {
      problem = lexer.sectionHeader();
      inSection = true;
    } else if (ch === '#' || ch === ';') {
      lexer.skipComment();
    } else if (inSection && !isSpace(ch)) {
      problem = lexer.option(ch);
    }
    if (problem !== undefined) return problem;
  }
}
