/**
 * Ignition config validation, written from the published specification documents
 * (coreos/ignition docs/configuration-v3_0.md to v3_5.md). Ignition runs once, at first boot, on a machine
 * nobody can log in to yet: a config it refuses bricks the instance, so every rule Ignition enforces at
 * boot is checked here, at upload, with the JSON path of the bad field.
 *
 * Unknown keys are warnings, as in Ignition itself (it ignores them); a field that exists only in a
 * newer spec version than the config declares is an error, because Ignition would silently drop it.
 */

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
}

export const supportedIgnitionVersions = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0', '3.5.0'] as const;
export const legacyIgnitionVersions = ['2.0.0', '2.1.0', '2.2.0', '2.3.0', '2.4.0'] as const;

type PathPart = string | number;

interface Context {
  /** Minor version of the 3.x spec being checked. */
  minor: number;
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
        if (!(name in node.fields)) warn(ctx, [...path, name], 'unknown key, Ignition ignores it');
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

/**
 * RFC 2397: `data:[<mediatype>][;base64],<data>`. Ignition decodes these itself at boot, so a malformed
 * one fails the boot, not the upload, unless caught here.
 */
export function checkDataUrl(url: string): string | undefined {
  const comma = url.indexOf(',');
  if (comma < 0) return 'a data: URL needs a "," before its data';
  const header = url.slice('data:'.length, comma);
  const data = url.slice(comma + 1);
  const params = header.split(';');
  const mediaType = params[0] ?? '';
  if (mediaType !== '' && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(mediaType)) {
    return `invalid media type "${mediaType}" in data: URL`;
  }
  const base64 = params[params.length - 1] === 'base64' && params.length > 1;
  for (const param of params.slice(1, base64 ? -1 : undefined)) {
    if (!/^[^=]+=.*$/.test(param)) return `invalid parameter "${param}" in data: URL`;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponentBytes(data);
  } catch {
    return 'invalid percent-encoding in data: URL';
  }
  if (base64) {
    const compact = decoded.replace(/[\r\n]/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) {
      return 'data: URL is marked base64 but its data is not valid base64';
    }
  }
  return undefined;
}

/** Percent-decoding that accepts any bytes (not only UTF-8), so binary payloads pass. */
function decodeURIComponentBytes(text: string): string {
  return text.replace(/%(..)?/g, (_match, hex: string | undefined) => {
    if (hex === undefined || !/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error('bad escape');
    return String.fromCharCode(Number.parseInt(hex, 16));
  });
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

const nodeUser = obj({ id: opt(int()), name: opt(str()) });

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

const partition = obj(
  {
    label: opt(str()),
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
  device: req(str(absolutePath)),
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
        obj({ device: req(str(absolutePath)), wipeTable: opt(bool), partitions: opt(list(partition)) }),
        byString('device'),
        'disk device',
      ),
    ),
    raid: opt(
      list(
        obj({
          name: req(str()),
          level: req(
            str((value, ctx, path) => {
              if (!raidLevels.includes(value)) fail(ctx, path, `expected a RAID level, got "${value}"`);
            }),
          ),
          devices: req(list(str(absolutePath))),
          spares: opt(int(nonNegative)),
          options: opt(list(str())),
        }),
        byString('name'),
        'RAID name',
      ),
    ),
    filesystems: opt(
      list(
        obj({
          device: req(str(absolutePath)),
          format: req(str(filesystemFormat)),
          path: opt(str(absolutePath)),
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
            path: req(str(absolutePath)),
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
          path: req(str(absolutePath)),
          overwrite: opt(bool),
          mode: opt(int(fileMode)),
          user: opt(nodeUser),
          group: opt(nodeUser),
        }),
      ),
    ),
    links: opt(
      list(
        obj({
          path: req(str(absolutePath)),
          overwrite: opt(bool),
          user: opt(nodeUser),
          group: opt(nodeUser),
          target: req(str()),
          hard: opt(bool),
        }),
      ),
    ),
    luks: opt(list(luks, byString('name'), 'LUKS name'), 2),
  },
  (value, ctx, path) => {
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

const systemd = obj({
  units: opt(
    list(
      obj({
        name: req(str(unitName)),
        enabled: opt(bool),
        mask: opt(bool),
        contents: opt(str()),
        dropins: opt(
          list(
            obj({
              name: req(
                str((value, ctx, path) => {
                  if (!value.endsWith('.conf'))
                    fail(ctx, path, `expected a name ending in .conf, got "${value}"`);
                }),
              ),
              contents: opt(str()),
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
        sshAuthorizedKeys: opt(
          list(str(), (item) => (typeof item === 'string' ? item : undefined), 'SSH key'),
        ),
        uid: opt(int()),
        gecos: opt(str()),
        homeDir: opt(str(absolutePath)),
        noCreateHome: opt(bool),
        primaryGroup: opt(str()),
        groups: opt(list(str())),
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
  config: opt(obj({ merge: opt(list(resource(true, 1))), replace: opt(resource(true, 1)) })),
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
    obj({ httpProxy: opt(str(httpUrl)), httpsProxy: opt(str(httpUrl)), noProxy: opt(list(str())) }),
    1,
  ),
});

const configV3 = obj({
  ignition: req(ignitionSection),
  storage: opt(storage),
  systemd: opt(systemd),
  passwd: opt(passwd),
  kernelArguments: opt(obj({ shouldExist: opt(list(str())), shouldNotExist: opt(list(str())) }), 3),
});

/**
 * Validate a parsed Ignition config. Spec 3.0.0 to 3.5.0 is checked field by field; 2.x (when allowed)
 * only for its version and its top-level shape, since those configs exist only for old images.
 */
export function validateIgnition(config: unknown, options: IgnitionValidationOptions): IgnitionValidation {
  const ctx: Context = { minor: 0, errors: [], warnings: [] };
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
