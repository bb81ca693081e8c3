import { PermanentError } from '../errors.ts';
import type { ValidationIssue } from './ignition.ts';
import { maxInstanceBodyBytes } from './put-body.ts';
import { instanceIdPattern } from './types.ts';

/** One line is one PUT body plus its id, so it may be as large as a PUT body and a little more. */
export const maxBulkLineBytes = maxInstanceBodyBytes + 4096;
/**
 * Lines one request may carry: enough that a request's own cost is small beside its lines' (the CLI sends
 * 2,000), few enough that a request stays well inside a Lambda's time and payload limits.
 */
export const maxBulkLines = 5000;

/** A line that cannot be used as it is; `line` counts from 1 in the text it came in. */
export class BulkLineError extends PermanentError {
  readonly line: number;
  readonly issues: ValidationIssue[];
  constructor(line: number, issues: ValidationIssue[]) {
    super('invalid-line', `line ${line}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'BulkLineError';
    this.line = line;
    this.issues = issues;
  }
}

export interface TextLine {
  line: number;
  text: string;
}

/**
 * Splits a byte stream into lines (LF, with or without CR) as it arrives, so a large body is never held
 * whole. A line over `maxLineBytes`, or bytes that are not UTF-8, end the stream with a BulkLineError
 * naming the line. Blank lines are skipped but counted, so numbers match an editor's.
 */
export async function* splitJsonLines(
  chunks: AsyncIterable<Uint8Array>,
  maxLineBytes = maxBulkLineBytes,
): AsyncGenerator<TextLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let parts: Buffer[] = [];
  let pending = 0;
  let line = 0;
  const finish = (bytes: Buffer): TextLine | undefined => {
    line++;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new BulkLineError(line, [{ path: '$', message: 'is not UTF-8 text' }]);
    }
    text = text.endsWith('\r') ? text.slice(0, -1) : text;
    return text.trim() === '' ? undefined : { line, text };
  };
  const tooLong = () =>
    new BulkLineError(line + 1, [{ path: '$', message: `is longer than ${maxLineBytes} bytes` }]);
  for await (const chunk of chunks) {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let at = data.indexOf(0x0a); at !== -1; at = data.indexOf(0x0a)) {
      if (pending + at > maxLineBytes) throw tooLong();
      const done = finish(Buffer.concat([...parts, data.subarray(0, at)]));
      parts = [];
      pending = 0;
      if (done !== undefined) yield done;
      data = data.subarray(at + 1);
    }
    if (data.byteLength > 0) {
      pending += data.byteLength;
      if (pending > maxLineBytes) throw tooLong();
      parts.push(Buffer.from(data));
    }
  }
  if (pending > 0) {
    const done = finish(Buffer.concat(parts));
    if (done !== undefined) yield done;
  }
}

/** `{"id": "…", …the PUT body…}`: the id, and the rest as the body a PUT of that id would take. */
export function parseBulkLine(entry: TextLine): { id: string; body: Record<string, unknown> } {
  let value: unknown;
  try {
    value = JSON.parse(entry.text);
  } catch (cause) {
    throw new BulkLineError(entry.line, [{ path: '$', message: `is not JSON: ${(cause as Error).message}` }]);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BulkLineError(entry.line, [
      {
        path: '$',
        message: 'expected an object: {"id":"node-1","ignition":{…}} (the PUT body with its "id")',
      },
    ]);
  }
  const { id, ...body } = value as Record<string, unknown>;
  if (typeof id !== 'string' || !instanceIdPattern.test(id)) {
    throw new BulkLineError(entry.line, [
      {
        path: '$.id',
        message:
          'expected the instance id: 1 to 128 letters, digits, ".", "_" or "-" (starting with a letter or digit)',
      },
    ]);
  }
  return { id, body };
}
