/**
 * Ignition config validation, written from the published specification documents
 * (coreos/ignition docs/configuration-v3_0.md to v3_5.md). Ignition runs once, at first boot, on a machine
 * nobody can log in to yet: a config it refuses bricks the instance, so every rule Ignition enforces at
 * boot is checked here, at upload, with the JSON path of the bad field.
 *
 * Unknown keys are warnings, as in Ignition itself (it ignores them), unless the operator asks for them to
 * be refused: a misspelt `sshAuthorizedKeys` boots a machine nobody can log in to. A field that exists only
 * in a newer spec version than the config declares is an error, because Ignition would silently drop it.
 */

import { nearestName } from '../nearest-name.ts';

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

export interface IgnitionValidationOptions {
  /** Accept spec 2.x configs (old CoreOS images); they are checked less deeply than 3.x. */
  allowLegacy: boolean;
  /** `reject` turns each unknown key into an error; default `warn`. */
  unknownKeys?: 'warn' | 'reject';
}

export const supportedIgnitionVersions = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0', '3.5.0'] as const;
export const legacyIgnitionVersions = ['2.0.0', '2.1.0', '2.2.0', '2.3.0', '2.4.0'] as const;

type PathPart = string | number;

interface Context {
  /** Minor version of the 3.x spec being checked. */
  minor: number;
  unknownKeys: 'warn' | 'reject';
  errors: ValidationIssue[];
  warnings: ValidationIssue[];
}

function render(path: readonly PathPart[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}`;
}

function fail(ctx: Context, path: readonly PathPart[], message: string): void {
  ctx.errors.push({ path: render(path), message });
}

function warn(ctx: Context, path: readonly PathPart[], message: string): void {
  ctx.warnings.push({ path: render(path), message });
}

type Node =
  | { kind: 'object'; fields: Record<string, Field>; check?: ObjectCheck }
  | { kind: 'array'; item: Node; uniqueBy?: (item: unknown) => string | undefined; uniqueName?: string }
  | { kind: 'string'; check?: StringCheck }
  | { kind: 'integer'; check?: IntegerCheck }
  | { kind: 'boolean' };

type ObjectCheck = (value: Record<string, unknown>, ctx: Context, path: PathPart[]) => void;
type StringCheck = (value: string, ctx: Context, path: PathPart[]) => void;
type IntegerCheck = (value: number, ctx: Context, path: PathPart[]) => void;

interface Field {
  node: Node;
  required?: boolean;
  /** First 3.x minor version that has this field. */
  since?: number;
}

const str = (check?: StringCheck): Node => ({ kind: 'string', ...(check ? { check } : {}) });
const int = (check?: IntegerCheck): Node => ({ kind: 'integer', ...(check ? { check } : {}) });
const bool: Node = { kind: 'boolean' };
const obj = (fields: Record<string, Field>, check?: ObjectCheck): Node => ({
  kind: 'object',
  fields,
  ...(check ? { check } : {}),
});
const list = (item: Node, uniqueBy?: (item: unknown) => string | undefined, uniqueName?: string): Node => ({
  kind: 'array',
  item,
  ...(uniqueBy ? { uniqueBy } : {}),
  ...(uniqueName ? { uniqueName } : {}),
});
const opt = (node: Node, since?: number): Field => ({ node, ...(since === undefined ? {} : { since }) });
const req = (node: Node, since?: number): Field => ({
  node,
  required: true,
  ...(since === undefined ? {} : { since }),
});

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  return `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKey(fields: Record<string, Field>, name: string, ctx: Context, path: PathPart[]): void {
  const known = Object.entries(fields)
    .filter(([, field]) => field.since === undefined || field.since <= ctx.minor)
    .map(([key]) => key);
  const nearest = nearestName(name, known);
  const hint = nearest === undefined ? '' : `; did you mean \`${nearest}\`?`;
  if (ctx.unknownKeys === 'reject') {
    fail(ctx, path, `unknown key, refused because unknown Ignition keys are rejected${hint}`);
  } else {
    warn(ctx, path, `unknown key, Ignition ignores it${hint}`);
  }
}

function walk(node: Node, value: unknown, ctx: Context, path: PathPart[]): void {
  switch (node.kind) {
    case 'string':
      if (typeof value !== 'string') {
        fail(ctx, path, `expected a string, got ${describeType(value)}`);
        return;
      }
      node.check?.(value, ctx, path);
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        fail(ctx, path, `expected an integer, got ${describeType(value)}`);
        return;
      }
      node.check?.(value, ctx, path);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(ctx, path, `expected a boolean, got ${describeType(value)}`);
      return;
    case 'array': {
      if (!Array.isArray(value)) {
        fail(ctx, path, `expected an array, got ${describeType(value)}`);
        return;
      }
      const seen = new Set<string>();
      value.forEach((item, index) => {
        walk(node.item, item, ctx, [...path, index]);
        const key = node.uniqueBy?.(item);
        if (key !== undefined) {
          if (seen.has(key)) fail(ctx, [...path, index], `duplicate ${node.uniqueName ?? 'entry'} "${key}"`);
          seen.add(key);
        }
      });
      return;
    }
    case 'object': {
      if (!isRecord(value)) {
        fail(ctx, path, `expected an object, got ${describeType(value)}`);
        return;
      }
      for (const [name, field] of Object.entries(node.fields)) {
        const present = value[name] !== undefined && value[name] !== null;
        if (!present) {
          if (field.required) fail(ctx, [...path, name], 'is required');
          continue;
        }
        if (field.since !== undefined && ctx.minor < field.since) {
          fail(ctx, [...path, name], `needs spec version 3.${field.since}.0 or later`);
          continue;
        }
        walk(field.node, value[name], ctx, [...path, name]);
      }
      for (const name of Object.keys(value)) {
        if (!(name in node.fields)) unknownKey(node.fields, name, ctx, [...path, name]);
      }
      node.check?.(value, ctx, path);
      return;
    }
  }
}

function absolutePath(value: string, ctx: Context, path: PathPart[]): void {
  if (!value.startsWith('/')) fail(ctx, path, `expected an absolute path, got "${value}"`);
}

/** Go's `path.Clean` for an absolute path: Ignition refuses any node or device path that differs from it. */
function cleanPath(value: string): string {
  const parts: string[] = [];
  for (const part of value.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function simplifiedPath(value: string, ctx: Context, path: PathPart[]): void {
  if (!value.startsWith('/')) {
    absolutePath(value, ctx, path);
    return;
  }
  const clean = cleanPath(value);
  if (clean !== value) {
    fail(ctx, path, `path is not fully simplified: "${truncate(value)}" (expected "${truncate(clean)}")`);
  }
}

const hashLengths: Record<string, { hex: number; since: number }> = {
  sha512: { hex: 128, since: 0 },
  sha256: { hex: 64, since: 1 },
};

function verificationHash(value: string, ctx: Context, path: PathPart[]): void {
  const dash = value.indexOf('-');
  const fn = dash < 0 ? value : value.slice(0, dash);
  const sum = dash < 0 ? '' : value.slice(dash + 1);
  const known = hashLengths[fn];
  const allowed =
    ctx.minor >= 1 ? '"sha512-<128 hex digits>" or "sha256-<64 hex digits>"' : '"sha512-<128 hex digits>"';
  if (known === undefined || known.since > ctx.minor) {
    fail(ctx, path, `unrecognized hash function "${fn}": expected ${allowed}`);
    return;
  }
  if (sum.length !== known.hex || !/^[0-9a-fA-F]*$/.test(sum)) {
    fail(ctx, path, `expected ${fn}- followed by ${known.hex} hex digits`);
  }
}

const tspecials = new Set('()<>@,;:\\"/[]?=');

/** RFC 2045 token character, as Ignition's data: URL parser (vincent-petithory/dataurl) defines it. */
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

/**
 * RFC 2397 `data:[<mediatype>][;base64],<data>`, checked the way Ignition parses it at boot (Go's
 * url.Parse, then the vincent-petithory/dataurl lexer, then Go's strict base64 or percent-decoding), so
 * every URL accepted here is one Ignition can decode. A malformed one fails the boot, not the upload,
 * unless caught here.
 */
export function checkDataUrl(url: string): string | undefined {
  if ([...url].some((ch) => ch.charCodeAt(0) < 0x20 || ch === '\u007f'))
    return 'a data: URL may not contain control characters';
  if (!url.startsWith('data:')) return 'a data: URL must start with "data:"';
  let pos = 'data:'.length;
  const at = (i: number): string => url[i] ?? '';
  const first = at(pos);
  if (first !== ';' && first !== ',') {
    const slash = url.indexOf('/', pos);
    const stop = slash < 0 ? url.length : slash;
    const type = url.slice(pos, stop);
    const bad = [...type].find((ch) => !isToken(ch));
    if (type === '' || bad !== undefined) return `invalid media type "${truncate(type)}" in data: URL`;
    if (slash < 0) return 'a data: URL media type needs a "/"';
    if (!/^[xX]-/.test(type) && !discreteTypes.some((t) => type.startsWith(t))) {
      return `invalid media type "${truncate(type)}" in data: URL (expected text, image, audio, video, application, message, multipart or x-...)`;
    }
    pos = slash + 1;
    const subStart = pos;
    while (pos < url.length && at(pos) !== ';' && at(pos) !== ',') {
      if (!isToken(at(pos))) return `invalid media subtype "${truncate(url.slice(subStart))}" in data: URL`;
      pos += 1;
    }
    if (pos >= url.length) return 'a data: URL needs a "," before its data';
  }
  let base64 = false;
  while (at(pos) === ';') {
    pos += 1;
    const attrStart = pos;
    while (pos < url.length && at(pos) !== '=' && at(pos) !== ',') {
      if (!isToken(at(pos)))
        return `invalid parameter name in data: URL at "${truncate(url.slice(attrStart))}"`;
      pos += 1;
    }
    const attr = url.slice(attrStart, pos);
    if (attr === '' || pos >= url.length) return 'unterminated parameter in data: URL';
    if (at(pos) === ',') {
      if (attr !== 'base64') {
        return `invalid parameter "${truncate(attr)}" in data: URL: expected name=value, or "base64" last`;
      }
      base64 = true;
      break;
    }
    pos += 1;
    if (at(pos) === '"') {
      const close = /^((?:[^\\"]|\\[\s\S])*)"/.exec(url.slice(pos + 1));
      if (close === null) return 'unclosed quoted parameter value in data: URL';
      const inner = close[1] ?? '';
      if ([...inner].some((ch) => ch.charCodeAt(0) > 0x7f))
        return 'a quoted data: URL parameter value must be ASCII';
      const problem = quotedProblem(inner);
      if (problem !== undefined) return problem;
      pos += inner.length + 2;
    } else {
      const valueStart = pos;
      while (pos < url.length && at(pos) !== ';' && at(pos) !== ',') {
        if (!isToken(at(pos)))
          return `invalid parameter value in data: URL at "${truncate(url.slice(valueStart))}"`;
        pos += 1;
      }
      if (pos === valueStart) return `empty value for parameter "${truncate(attr)}" in data: URL`;
      const problem = percentProblem(url.slice(valueStart, pos));
      if (problem !== undefined) return problem;
    }
    if (at(pos) !== ';' && at(pos) !== ',') return 'a data: URL needs a "," before its data';
  }
  if (at(pos) !== ',') return 'a data: URL needs a "," before its data';
  const data = url.slice(pos + 1);
  if (base64) {
    if (!goBase64.test(data)) return 'data: URL is marked base64 but its data is not valid (padded) base64';
    return undefined;
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

function schemesFor(minor: number): string[] {
  const schemes = ['http', 'https', 'tftp', 's3', 'data'];
  if (minor >= 2) schemes.push('gs');
  if (minor >= 4) schemes.push('arn');
  return schemes;
}

function sourceUrl(value: string, ctx: Context, path: PathPart[]): void {
  if (value === '') return;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  const allowed = schemesFor(ctx.minor);
  if (scheme === undefined || !allowed.includes(scheme)) {
    fail(ctx, path, `expected a URL with scheme ${allowed.join(', ')}; got "${truncate(value)}"`);
    return;
  }
  if (scheme === 'data') {
    const problem = checkDataUrl(value);
    if (problem !== undefined) fail(ctx, path, problem);
    return;
  }
  if (scheme === 'arn') return;
  try {
    new URL(value);
  } catch {
    fail(ctx, path, `not a valid URL: "${truncate(value)}"`);
  }
}

function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function resource(sourceRequired: boolean, compressionSince: number): Node {
  return obj(
    {
      source: { node: str(sourceUrl), ...(sourceRequired ? { required: true } : {}) },
      compression: opt(
        str((value, ctx, path) => {
          if (value !== '' && value !== 'gzip') fail(ctx, path, `expected "gzip" or null, got "${value}"`);
        }),
        compressionSince,
      ),
      httpHeaders: opt(
        list(
          obj({
            name: req(
              str((value, ctx, path) => {
                if (!headerName.test(value)) fail(ctx, path, `expected an HTTP header name, got "${value}"`);
              }),
            ),
            value: opt(str()),
          }),
          (item) => (isRecord(item) && typeof item.name === 'string' ? item.name.toLowerCase() : undefined),
          'header',
        ),
        1,
      ),
      verification: opt(obj({ hash: opt(str(verificationHash)) })),
    },
    (value, ctx, path) => {
      const headers = value.httpHeaders;
      const source = typeof value.source === 'string' ? value.source : '';
      if (Array.isArray(headers) && headers.length > 0 && !/^https?:/i.test(source)) {
        fail(ctx, [...path, 'httpHeaders'], 'HTTP headers are only allowed with http or https sources');
      }
    },
  );
}

const nodeUser = obj({ id: opt(int()), name: opt(str()) }, (value, ctx, path) => {
  if (typeof value.id === 'number' && typeof value.name === 'string' && value.name !== '') {
    fail(ctx, path, 'cannot set both id and name');
  }
});

function fileMode(value: number, ctx: Context, path: PathPart[]): void {
  if (value < 0 || value > 0o7777) {
    fail(ctx, path, `expected a mode from 0 to 4095 (07777), got ${value}`);
    return;
  }
  if (value > 0o777 && ctx.minor < 4) {
    warn(ctx, path, 'setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0');
  }
}

const guidPattern = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

function guid(value: string, ctx: Context, path: PathPart[]): void {
  if (value !== '' && !guidPattern.test(value)) fail(ctx, path, `expected a GUID, got "${value}"`);
}

const nonNegative: IntegerCheck = (value, ctx, path) => {
  if (value < 0) fail(ctx, path, `expected 0 or more, got ${value}`);
};

function partitionLabel(value: string, ctx: Context, path: PathPart[]): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > 36) fail(ctx, path, `partition labels may not exceed 36 characters (bytes), got ${bytes}`);
  if (value.includes(':'))
    fail(ctx, path, 'partition label may not contain ":" (sgdisk would truncate it there)');
}

/**
 * Ignition's check of explicit extents (sgdisk would fail on them at boot). Start 0 means "wherever it
 * fits" and is skipped; size 0 ("fill") counts as its first MiB only, exactly as Ignition 2.14 computes
 * it, so nothing it accepts is refused here. Only the first clash is reported, as there.
 */
function partitionOverlap(partitions: unknown[], ctx: Context, path: PathPart[]): void {
  const extents = partitions.map((entry) => {
    if (!isRecord(entry) || typeof entry.startMiB !== 'number' || typeof entry.sizeMiB !== 'number')
      return undefined;
    if (entry.startMiB === 0) return undefined;
    const last = entry.sizeMiB === 0 ? entry.startMiB : entry.startMiB + entry.sizeMiB - 1;
    return { start: entry.startMiB, last };
  });
  for (const [i, a] of extents.entries()) {
    if (a === undefined) continue;
    for (const [j, b] of extents.entries()) {
      if (b === undefined || i === j) continue;
      if (a.start <= b.last && a.last >= b.start) {
        fail(
          ctx,
          [...path, j],
          `partitions overlap: this one and partitions[${i}] share MiB ${Math.max(a.start, b.start)}`,
        );
        return;
      }
    }
  }
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

const partition = obj(
  {
    label: opt(str(partitionLabel)),
    number: opt(int(nonNegative)),
    sizeMiB: opt(int(nonNegative)),
    startMiB: opt(int(nonNegative)),
    typeGuid: opt(str(guid)),
    guid: opt(str(guid)),
    wipePartitionEntry: opt(bool),
    shouldExist: opt(bool),
    resize: opt(bool, 2),
  },
  (value, ctx, path) => {
    if (
      (value.number === undefined || value.number === null || value.number === 0) &&
      !present(value.label)
    ) {
      fail(ctx, path, 'a partition number >= 1 or a label must be specified');
    }
    if (value.shouldExist !== false) return;
    if (typeof value.number !== 'number' || value.number === 0) {
      fail(ctx, [...path, 'number'], 'a partition with shouldExist false needs a non-zero number');
    }
    for (const key of ['label', 'sizeMiB', 'startMiB', 'typeGuid', 'guid']) {
      if (value[key] !== undefined && value[key] !== null) {
        fail(ctx, [...path, key], 'must be omitted when shouldExist is false');
      }
    }
  },
);

const raidLevels = ['linear', 'raid0', '0', 'stripe', 'raid1', '1', 'mirror', 'raid4', '4', 'raid5', '5'];
raidLevels.push('raid6', '6', 'raid10', '10');

function filesystemFormat(value: string, ctx: Context, path: PathPart[]): void {
  const formats = ['ext4', 'btrfs', 'xfs', 'vfat', 'swap', ...(ctx.minor >= 3 ? ['none'] : [])];
  if (!formats.includes(value)) fail(ctx, path, `expected one of ${formats.join(', ')}; got "${value}"`);
}

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

function unitName(value: string, ctx: Context, path: PathPart[]): void {
  const suffix = value.slice(value.lastIndexOf('.') + 1);
  if (!value.includes('.') || !unitSuffixes.includes(suffix)) {
    fail(ctx, path, `expected a unit name ending in .${unitSuffixes.join(', .')}; got "${value}"`);
  }
}

function byValue(item: unknown): string | undefined {
  return typeof item === 'string' ? item : undefined;
}

function byString(key: string): (item: unknown) => string | undefined {
  return (item) => (isRecord(item) && typeof item[key] === 'string' ? item[key] : undefined);
}

function httpUrl(value: string, ctx: Context, path: PathPart[]): void {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    fail(ctx, path, `expected an http(s) URL, got "${truncate(value)}"`);
  }
}

const luks = obj({
  name: req(str()),
  device: req(str(simplifiedPath)),
  keyFile: opt(resource(false, 0)),
  label: opt(str()),
  uuid: opt(str()),
  options: opt(list(str())),
  discard: opt(bool, 4),
  openOptions: opt(list(str()), 4),
  wipeVolume: opt(bool),
  clevis: opt(
    obj(
      {
        tang: opt(
          list(
            obj({ url: req(str(httpUrl)), thumbprint: req(str()), advertisement: opt(str(), 4) }),
            byString('url'),
            'tang server',
          ),
        ),
        tpm2: opt(bool),
        threshold: opt(int(nonNegative)),
        custom: opt(obj({ pin: req(str()), config: req(str()), needsNetwork: opt(bool) })),
      },
      (value, ctx, path) => {
        if (!isRecord(value.custom)) return;
        const others = ['tang', 'tpm2', 'threshold'].filter(
          (k) => value[k] !== undefined && value[k] !== null,
        );
        if (others.length > 0) fail(ctx, [...path, 'custom'], `excludes ${others.join(', ')}`);
      },
    ),
  ),
  cex: opt(obj({ enabled: opt(bool) }), 5),
});

const storage = obj(
  {
    disks: opt(
      list(
        obj(
          { device: req(str(simplifiedPath)), wipeTable: opt(bool), partitions: opt(list(partition)) },
          (value, ctx, path) => {
            if (!Array.isArray(value.partitions)) return;
            const numbers = new Set<number>();
            const labels = new Set<string>();
            value.partitions.forEach((entry: unknown, index) => {
              if (!isRecord(entry)) return;
              const at = [...path, 'partitions', index];
              if (typeof entry.number === 'number' && entry.number !== 0) {
                if (numbers.has(entry.number))
                  fail(ctx, at, `partition numbers collide: ${entry.number} is used twice`);
                numbers.add(entry.number);
              }
              if (typeof entry.label === 'string') {
                if (labels.has(entry.label))
                  fail(ctx, at, `cannot use the same partition label "${entry.label}" twice`);
                labels.add(entry.label);
              }
            });
            partitionOverlap(value.partitions, ctx, [...path, 'partitions']);
          },
        ),
        byString('device'),
        'disk device',
      ),
    ),
    raid: opt(
      list(
        obj(
          {
            name: req(str()),
            level: req(
              str((value, ctx, path) => {
                if (!raidLevels.includes(value)) fail(ctx, path, `expected a RAID level, got "${value}"`);
              }),
            ),
            devices: req(list(str(simplifiedPath), byValue, 'RAID device')),
            spares: opt(int(nonNegative)),
            options: opt(list(str())),
          },
          (value, ctx, path) => {
            if (Array.isArray(value.devices) && value.devices.length === 0) {
              fail(ctx, [...path, 'devices'], 'raid devices required: list at least one device');
            }
            const striped = ['linear', 'raid0', '0', 'stripe'];
            if (
              typeof value.spares === 'number' &&
              value.spares !== 0 &&
              striped.includes(String(value.level))
            ) {
              fail(ctx, [...path, 'level'], 'spares unsupported for linear and raid0 arrays');
            }
          },
        ),
        byString('name'),
        'RAID name',
      ),
    ),
    filesystems: opt(
      list(
        obj({
          device: req(str(simplifiedPath)),
          format: req(str(filesystemFormat)),
          path: opt(str(simplifiedPath)),
          wipeFilesystem: opt(bool),
          label: opt(str()),
          uuid: opt(str()),
          options: opt(list(str())),
          mountOptions: opt(list(str()), 1),
        }),
        byString('device'),
        'filesystem device',
      ),
    ),
    files: opt(
      list(
        obj(
          {
            path: req(str(simplifiedPath)),
            overwrite: opt(bool),
            contents: opt(resource(false, 0)),
            append: opt(list(resource(false, 0))),
            mode: opt(int(fileMode)),
            user: opt(nodeUser),
            group: opt(nodeUser),
          },
          (value, ctx, path) => {
            const contents = value.contents;
            const source = isRecord(contents) ? contents.source : undefined;
            if (value.overwrite === true && (source === undefined || source === null)) {
              fail(ctx, [...path, 'overwrite'], 'overwrite must be false if contents.source is unspecified');
            }
          },
        ),
      ),
    ),
    directories: opt(
      list(
        obj({
          path: req(str(simplifiedPath)),
          overwrite: opt(bool),
          mode: opt(int(fileMode)),
          user: opt(nodeUser),
          group: opt(nodeUser),
        }),
      ),
    ),
    links: opt(
      list(
        obj(
          {
            path: req(str(simplifiedPath)),
            overwrite: opt(bool),
            user: opt(nodeUser),
            group: opt(nodeUser),
            target: req(str()),
            hard: opt(bool),
          },
          (value, ctx, path) => {
            if (value.target === '' && ctx.minor >= 3)
              fail(ctx, [...path, 'target'], 'link target is required');
          },
        ),
      ),
    ),
    luks: opt(list(luks, byString('name'), 'LUKS name'), 2),
  },
  (value, ctx, path) => {
    linkedPaths(value, ctx, path);
    const seen = new Map<string, string>();
    for (const section of ['files', 'directories', 'links']) {
      const entries = value[section];
      if (!Array.isArray(entries)) continue;
      entries.forEach((entry, index) => {
        if (!isRecord(entry) || typeof entry.path !== 'string') return;
        const first = seen.get(entry.path);
        if (first !== undefined) {
          fail(ctx, [...path, section, index], `duplicate path "${entry.path}" (already in ${first})`);
        } else {
          seen.set(entry.path, section);
        }
      });
    }
  },
);

/**
 * A node whose parent is a link from the same config would be written through that link, wherever it
 * points; Ignition refuses it, and a hard link to a directory it creates.
 */
function linkedPaths(value: Record<string, unknown>, ctx: Context, path: PathPart[]): void {
  const pathsOf = (section: string): (string | undefined)[] => {
    const entries = value[section];
    if (!Array.isArray(entries)) return [];
    return entries.map((entry: unknown) =>
      isRecord(entry) && typeof entry.path === 'string' ? entry.path : undefined,
    );
  };
  const links = Array.isArray(value.links) ? value.links : [];
  const linkPaths = pathsOf('links').filter((p): p is string => p !== undefined);
  const kinds: [string, string][] = [
    ['directories', 'directory'],
    ['files', 'file'],
    ['links', 'link'],
  ];
  for (const [section, kind] of kinds) {
    pathsOf(section).forEach((nodePath, index) => {
      if (nodePath === undefined) return;
      const link = linkPaths.find((l) => nodePath.startsWith(`${l}/`));
      if (link !== undefined) {
        fail(ctx, [...path, section, index], `${kind} path includes link in config: "${link}" is a link`);
      }
    });
  }
  const directories = new Set(pathsOf('directories'));
  links.forEach((entry: unknown, index) => {
    if (
      isRecord(entry) &&
      entry.hard === true &&
      typeof entry.target === 'string' &&
      directories.has(entry.target)
    ) {
      fail(
        ctx,
        [...path, 'links', index],
        `hard link target is a directory: "${entry.target}" is in directories`,
      );
    }
  });
}

const goSpace = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const isSpace = (ch: string): boolean => goSpace.test(ch);
const trimSpace = (text: string): string => {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text[start] ?? '')) start += 1;
  while (end > start && isSpace(text[end - 1] ?? '')) end -= 1;
  return text.slice(start, end);
};

/** systemd's LINE_MAX: go-systemd refuses longer lines rather than let systemd truncate them. */
const unitLineMax = 2048;

/**
 * Why a unit file would not parse, following go-systemd's unit.Deserialize, which Ignition runs on every
 * unit and drop-in. Text before the first section is skipped as it does; an unterminated section
 * header, text after one, or an option line without "=" is an error.
 */
export function unitContentProblem(text: string): string | undefined {
  for (const line of text.split(/[\r\n]/)) {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (bytes >= unitLineMax) return `line too long (${bytes} bytes; max ${unitLineMax - 1})`;
  }
  const chars = [...text];
  let pos = 0;
  const toEol = (): { line: string; eof: boolean } => {
    let end = pos;
    while (end < chars.length && chars[end] !== '\n') end += 1;
    const eof = end >= chars.length;
    let line = chars.slice(pos, end).join('');
    pos = eof ? end : end + 1;
    if (eof && line.endsWith('\r')) line = line.slice(0, -1);
    return { line, eof };
  };
  const ignoreLine = (): void => {
    for (;;) {
      let { line } = toEol();
      if (line.endsWith(' ')) line = line.slice(0, -1);
      if (!line.endsWith('\\')) return;
    }
  };
  const isComment = (ch: string): boolean => ch === '#' || ch === ';';
  let inSection = false;
  for (;;) {
    const ch = chars[pos];
    if (ch === undefined) return undefined;
    pos += 1;
    if (ch === '[') {
      const close = chars.indexOf(']', pos);
      if (close < 0) return 'unable to find end of section';
      const name = chars.slice(pos, close).join('');
      pos = close + 1;
      const garbage = trimSpace(toEol().line);
      if (garbage !== '') return `found garbage after section name [${name}]: "${truncate(garbage)}"`;
      inSection = true;
    } else if (isComment(ch)) {
      ignoreLine();
    } else if (inSection && !isSpace(ch)) {
      let c: string | undefined = ch;
      while (c !== '=') {
        if (c === undefined) return 'unexpected end of file in an option name (no "=")';
        if (c === '\n' || c === '\r')
          return 'unexpected newline encountered while parsing option name (no "=")';
        c = chars[pos];
        pos += 1;
      }
      for (;;) {
        const { line, eof } = toEol();
        if (trimSpace(line) === '' || !line.endsWith('\\') || eof) break;
      }
    }
  }
}

function unitContents(value: string, ctx: Context, path: PathPart[]): void {
  const problem = unitContentProblem(value);
  if (problem !== undefined) fail(ctx, path, `invalid unit content: ${problem}`);
}

const systemd = obj({
  units: opt(
    list(
      obj({
        name: req(str(unitName)),
        enabled: opt(bool),
        mask: opt(bool),
        contents: opt(str(unitContents)),
        dropins: opt(
          list(
            obj({
              name: req(
                str((value, ctx, path) => {
                  if (!value.endsWith('.conf'))
                    fail(ctx, path, `expected a name ending in .conf, got "${value}"`);
                }),
              ),
              contents: opt(str(unitContents)),
            }),
            byString('name'),
            'drop-in name',
          ),
        ),
      }),
      byString('name'),
      'unit name',
    ),
  ),
});

const passwd = obj({
  users: opt(
    list(
      obj({
        name: req(str()),
        passwordHash: opt(str()),
        sshAuthorizedKeys: opt(list(str(), byValue, 'SSH key')),
        uid: opt(int()),
        gecos: opt(str()),
        homeDir: opt(str(absolutePath)),
        noCreateHome: opt(bool),
        primaryGroup: opt(str()),
        groups: opt(list(str(), byValue, 'group')),
        noUserGroup: opt(bool),
        noLogInit: opt(bool),
        shell: opt(str()),
        shouldExist: opt(bool, 2),
        system: opt(bool),
      }),
      byString('name'),
      'user name',
    ),
  ),
  groups: opt(
    list(
      obj({
        name: req(str()),
        gid: opt(int()),
        passwordHash: opt(str()),
        shouldExist: opt(bool, 2),
        system: opt(bool),
      }),
      byString('name'),
      'group name',
    ),
  ),
});

const ignitionSection = obj({
  version: req(str()),
  config: opt(
    obj({
      merge: opt(list(resource(true, 1), byString('source'), 'merge source')),
      replace: opt(resource(true, 1)),
    }),
  ),
  timeouts: opt(obj({ httpResponseHeaders: opt(int(nonNegative)), httpTotal: opt(int(nonNegative)) })),
  security: opt(
    obj({
      tls: opt(
        obj({
          certificateAuthorities: opt(
            list(resource(true, 1), byString('source'), 'certificate authority source'),
          ),
        }),
      ),
    }),
  ),
  proxy: opt(
    obj({
      httpProxy: opt(str(httpUrl)),
      httpsProxy: opt(str(httpUrl)),
      noProxy: opt(list(str(), byValue, 'noProxy entry')),
    }),
    1,
  ),
});

/**
 * From spec 3.4.0 Ignition refuses a file, directory or link at the path a unit or drop-in with contents
 * is written to, instead of letting one silently overwrite the other.
 */
function systemdPathConflicts(value: Record<string, unknown>, ctx: Context): void {
  if (ctx.minor < 4 || !isRecord(value.systemd) || !isRecord(value.storage)) return;
  const units = Array.isArray(value.systemd.units) ? value.systemd.units : [];
  const written = new Set<string>();
  const hasContents = (entry: Record<string, unknown>): boolean =>
    typeof entry.contents === 'string' && entry.contents !== '';
  for (const unit of units) {
    if (!isRecord(unit) || typeof unit.name !== 'string') continue;
    if (hasContents(unit)) written.add(`/etc/systemd/system/${unit.name}`);
    const dropins = Array.isArray(unit.dropins) ? unit.dropins : [];
    for (const dropin of dropins) {
      if (isRecord(dropin) && typeof dropin.name === 'string' && hasContents(dropin)) {
        written.add(`/etc/systemd/system/${unit.name}.d/${dropin.name}`);
      }
    }
  }
  for (const section of ['files', 'directories', 'links']) {
    const entries = value.storage[section];
    if (!Array.isArray(entries)) continue;
    entries.forEach((entry: unknown, index) => {
      if (isRecord(entry) && typeof entry.path === 'string' && written.has(entry.path)) {
        fail(
          ctx,
          ['storage', section, index, 'path'],
          'path conflicts with a systemd unit or drop-in of this config',
        );
      }
    });
  }
}

const configV3 = obj(
  {
    ignition: req(ignitionSection),
    storage: opt(storage),
    systemd: opt(systemd),
    passwd: opt(passwd),
    kernelArguments: opt(
      obj(
        {
          shouldExist: opt(list(str(), byValue, 'kernel argument')),
          shouldNotExist: opt(list(str(), byValue, 'kernel argument')),
        },
        (value, ctx, path) => {
          const wanted = Array.isArray(value.shouldExist) ? value.shouldExist : [];
          const unwanted = Array.isArray(value.shouldNotExist) ? value.shouldNotExist : [];
          unwanted.forEach((arg: unknown, index) => {
            if (typeof arg === 'string' && wanted.includes(arg)) {
              fail(
                ctx,
                [...path, 'shouldNotExist', index],
                `kernel argument "${arg}" is also in shouldExist`,
              );
            }
          });
        },
      ),
      3,
    ),
  },
  systemdPathConflicts,
);

/**
 * Validate a parsed Ignition config. Spec 3.0.0 to 3.5.0 is checked field by field; 2.x (when allowed)
 * only for its version and its top-level shape, since those configs exist only for old images.
 */
export function validateIgnition(config: unknown, options: IgnitionValidationOptions): IgnitionValidation {
  const ctx: Context = { minor: 0, unknownKeys: options.unknownKeys ?? 'warn', errors: [], warnings: [] };
  if (!isRecord(config)) {
    fail(ctx, [], `expected an Ignition config object, got ${describeType(config)}`);
    return { errors: ctx.errors, warnings: ctx.warnings };
  }
  const section = config.ignition;
  const version = isRecord(section) && typeof section.version === 'string' ? section.version : undefined;
  if (version === undefined) {
    fail(ctx, ['ignition', 'version'], 'is required: a spec version string such as "3.4.0"');
    return { errors: ctx.errors, warnings: ctx.warnings };
  }
  const result = (): IgnitionValidation => ({ version, errors: ctx.errors, warnings: ctx.warnings });
  if ((legacyIgnitionVersions as readonly string[]).includes(version)) {
    if (!options.allowLegacy) {
      fail(
        ctx,
        ['ignition', 'version'],
        `spec ${version} is a legacy 2.x version; expected ${supportedIgnitionVersions.join(', ')} (2.x is accepted only when api.allowLegacyIgnition is on)`,
      );
    }
    return result();
  }
  const index = (supportedIgnitionVersions as readonly string[]).indexOf(version);
  if (index < 0) {
    fail(
      ctx,
      ['ignition', 'version'],
      `unsupported spec version "${version}"; expected one of ${supportedIgnitionVersions.join(', ')}`,
    );
    return result();
  }
  ctx.minor = index;
  walk(configV3, config, ctx, []);
  return result();
}

/** One line per issue, for error messages and the CLI. */
export function formatValidationIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n');
}
