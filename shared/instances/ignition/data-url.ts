/**
 * RFC 2397 `data:[<mediatype>][;base64],<data>` URLs, checked the way Ignition parses them at boot (Go's
 * url.Parse, then the vincent-petithory/dataurl lexer, then Go's strict base64 or percent-decoding), so
 * every URL accepted here is one Ignition can decode. A malformed one fails the boot, not the upload,
 * unless caught here.
 */

import { truncate } from './issues.ts';

const tspecials = new Set('()<>@,;:\\"/[]?=');

/** RFC 2045 token character, as the dataurl lexer defines it. */
function isToken(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return ch.length === 1 && code > 0x20 && code < 0x7f && !tspecials.has(ch);
}

const unsafeUrlChars = new Set(' <>#"{}|\\^[]`');

/** RFC 2396 URI character, minus the delimiters and "unwise" characters the parser refuses raw. */
function isUrlChar(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return ch.length === 1 && code > 0x1f && code < 0x7f && !unsafeUrlChars.has(ch);
}

const discreteTypes = ['text', 'image', 'audio', 'video', 'application', 'message', 'multipart'];
const goBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const goQuoted =
  /^(?:[^\\"]|\\[abfnrtv\\"]|\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}|\\[0-3][0-7]{2})*$/;
const missingComma = 'a data: URL needs a "," before its data';

function percentProblem(text: string): string | undefined {
  return /%(?![0-9A-Fa-f]{2})/.test(text) ? 'invalid percent-encoding in data: URL' : undefined;
}

/** Go's strconv.Unquote on a quoted parameter value: only Go escape sequences, valid code points. */
function quotedProblem(text: string): string | undefined {
  if (!goQuoted.test(text)) return `invalid escape in quoted data: URL parameter "${truncate(text)}"`;
  for (const [, hex] of text.matchAll(/\\[uU]([0-9A-Fa-f]+)/g)) {
    const point = Number.parseInt(hex ?? '', 16);
    if (point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
      return `invalid code point escape in quoted data: URL parameter "${truncate(text)}"`;
    }
  }
  return undefined;
}

/** A position in the URL being lexed; each step returns a problem or moves `pos` on. */
class Cursor {
  pos = 'data:'.length;
  constructor(readonly url: string) {}
  at(i = this.pos): string {
    return this.url[i] ?? '';
  }
  get done(): boolean {
    return this.pos >= this.url.length;
  }
  /** Advances over token characters up to one of `stops`; the first other character is returned. */
  tokensUntil(stops: string): string | undefined {
    while (!this.done && !stops.includes(this.at())) {
      if (!isToken(this.at())) return this.at();
      this.pos += 1;
    }
    return undefined;
  }
}

function mediaType(c: Cursor): string | undefined {
  const slash = c.url.indexOf('/', c.pos);
  const type = c.url.slice(c.pos, slash < 0 ? c.url.length : slash);
  if (type === '' || [...type].some((ch) => !isToken(ch))) {
    return `invalid media type "${truncate(type)}" in data: URL`;
  }
  if (slash < 0) return 'a data: URL media type needs a "/"';
  if (!/^[xX]-/.test(type) && !discreteTypes.some((t) => type.startsWith(t))) {
    return `invalid media type "${truncate(type)}" in data: URL (expected text, image, audio, video, application, message, multipart or x-...)`;
  }
  c.pos = slash + 1;
  const subStart = c.pos;
  if (c.tokensUntil(';,') !== undefined) {
    return `invalid media subtype "${truncate(c.url.slice(subStart))}" in data: URL`;
  }
  return c.done ? missingComma : undefined;
}

function quotedValue(c: Cursor): string | undefined {
  const close = /^((?:[^\\"]|\\[\s\S])*)"/.exec(c.url.slice(c.pos + 1));
  if (close === null) return 'unclosed quoted parameter value in data: URL';
  const inner = close[1] ?? '';
  if ([...inner].some((ch) => ch.charCodeAt(0) > 0x7f))
    return 'a quoted data: URL parameter value must be ASCII';
  const problem = quotedProblem(inner);
  if (problem !== undefined) return problem;
  c.pos += inner.length + 2;
  return undefined;
}

function tokenValue(c: Cursor, attr: string): string | undefined {
  const start = c.pos;
  if (c.tokensUntil(';,') !== undefined) {
    return `invalid parameter value in data: URL at "${truncate(c.url.slice(start))}"`;
  }
  if (c.pos === start) return `empty value for parameter "${truncate(attr)}" in data: URL`;
  return percentProblem(c.url.slice(start, c.pos));
}

/** `;name=value` parameters, then an optional `;base64`; `base64` says which one ended the list. */
function parameters(c: Cursor): { problem?: string; base64: boolean } {
  while (c.at() === ';') {
    c.pos += 1;
    const attrStart = c.pos;
    if (c.tokensUntil('=,') !== undefined) {
      return {
        problem: `invalid parameter name in data: URL at "${truncate(c.url.slice(attrStart))}"`,
        base64: false,
      };
    }
    const attr = c.url.slice(attrStart, c.pos);
    if (attr === '' || c.done) return { problem: 'unterminated parameter in data: URL', base64: false };
    if (c.at() === ',') {
      if (attr === 'base64') return { base64: true };
      const problem = `invalid parameter "${truncate(attr)}" in data: URL: expected name=value, or "base64" last`;
      return { problem, base64: false };
    }
    c.pos += 1;
    const problem = c.at() === '"' ? quotedValue(c) : tokenValue(c, attr);
    if (problem !== undefined) return { problem, base64: false };
    if (c.at() !== ';' && c.at() !== ',') return { problem: missingComma, base64: false };
  }
  return { base64: false };
}

function payloadProblem(data: string, base64: boolean): string | undefined {
  if (base64) {
    return goBase64.test(data)
      ? undefined
      : 'data: URL is marked base64 but its data is not valid (padded) base64';
  }
  const bad = [...data].find((ch) => !isUrlChar(ch));
  if (bad !== undefined) {
    const escaped = [...Buffer.from(bad, 'utf8')].map(
      (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    );
    return `invalid data character ${JSON.stringify(bad)} in data: URL (percent-encode it as "${escaped.join('')}")`;
  }
  return percentProblem(data);
}

/** Why Ignition could not decode this `data:` URL, or undefined when it can. */
export function checkDataUrl(url: string): string | undefined {
  for (let i = 0; i < url.length; i += 1) {
    const code = url.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return 'a data: URL may not contain control characters';
  }
  if (!url.startsWith('data:')) return 'a data: URL must start with "data:"';
  const c = new Cursor(url);
  if (c.at() !== ';' && c.at() !== ',') {
    const problem = mediaType(c);
    if (problem !== undefined) return problem;
  }
  const { problem, base64 } = parameters(c);
  if (problem !== undefined) return problem;
  if (c.at() !== ',') return missingComma;
  return payloadProblem(url.slice(c.pos + 1), base64);
}
