import { isIP } from 'node:net';
import * as z from 'zod';

/**
 * What the metadata service tells an instance about itself, besides its config: the parameters a
 * provider registers with the config, in the shapes OpenStack's and EC2's metadata services use.
 */
export interface InstanceParams {
  /** Source addresses the instance asks from; each belongs to at most one instance. */
  ips: string[];
  publicIp?: string;
  hostname?: string;
  sshKeys: string[];
  instanceType?: string;
  zone?: string;
  attributes: Record<string, string>;
}

export const emptyParams: InstanceParams = { ips: [], sshKeys: [], attributes: {} };

/**
 * The one spelling of an address: IPv6 lower-case and compressed (as WHATWG URL hosts are), an
 * IPv4-mapped IPv6 address as its IPv4 form (what a dual-stack socket reports for an IPv4 peer).
 * Undefined for anything that is not an address.
 */
export function canonicalAddress(text: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  const candidate = mapped?.[1] ?? text;
  const family = isIP(candidate);
  if (family === 4) return candidate;
  if (family !== 6 || candidate.includes('%')) return undefined;
  const host = new URL(`http://[${candidate}]/`).hostname.slice(1, -1);
  const v4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (v4?.[1] !== undefined && v4[2] !== undefined) {
    const high = Number.parseInt(v4[1], 16);
    const low = Number.parseInt(v4[2], 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return host;
}

/** The metadata service's own address and addresses no instance can ask from. */
function unusableAddress(address: string): string | undefined {
  if (address === '169.254.169.254' || address === 'fd00:ec2::254') {
    return 'is the metadata service address itself';
  }
  if (address === '0.0.0.0' || address === '::') return 'is the unspecified address';
  if (address.startsWith('127.') || address === '::1') return 'is a loopback address';
  const first = Number(address.split('.')[0]);
  if (address.includes('.') && first >= 224) return 'is a multicast or reserved address';
  if (/^ff[0-9a-f]{2}:/.test(address)) return 'is a multicast address';
  return undefined;
}

const address = z.string().transform((value, ctx) => {
  const canonical = canonicalAddress(value);
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 64)}" is not an IPv4 or IPv6 address` });
    return z.NEVER;
  }
  const problem = unusableAddress(canonical);
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: `${canonical} ${problem}` });
    return z.NEVER;
  }
  return canonical;
});

const hostnameLabel = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** RFC 1123 host name (what hostnamectl and Afterburn accept), at most 253 characters. */
export function hostnameProblem(value: string): string | undefined {
  if (value.length === 0 || value.length > 253) return 'expected 1 to 253 characters';
  const bad = value.split('.').find((label) => !hostnameLabel.test(label));
  if (bad !== undefined) {
    return `label "${bad.slice(0, 64)}" must be 1 to 63 letters, digits or "-", not starting or ending with "-"`;
  }
  return undefined;
}

const hostname = z.string().superRefine((value, ctx) => {
  const problem = hostnameProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** Key types OpenSSH accepts today (DSA keys were removed in OpenSSH 9.8). */
const sshKeyTypes: Record<string, { fields: number; check?: (fields: Buffer[]) => string | undefined }> = {
  'ssh-ed25519': {
    fields: 2,
    check: (f) => (f[1]?.length === 32 ? undefined : 'an Ed25519 key is 32 bytes'),
  },
  'ssh-rsa': {
    fields: 3,
    check: (f) => ((f[2]?.length ?? 0) >= 256 ? undefined : 'an RSA key must be at least 2048 bits'),
  },
  'ecdsa-sha2-nistp256': { fields: 3, check: (f) => curveMatches(f, 'nistp256') },
  'ecdsa-sha2-nistp384': { fields: 3, check: (f) => curveMatches(f, 'nistp384') },
  'ecdsa-sha2-nistp521': { fields: 3, check: (f) => curveMatches(f, 'nistp521') },
  'sk-ssh-ed25519@openssh.com': { fields: 3 },
  'sk-ecdsa-sha2-nistp256@openssh.com': { fields: 4 },
};

function curveMatches(fields: Buffer[], curve: string): string | undefined {
  return fields[1]?.toString('latin1') === curve ? undefined : `the key's curve is not ${curve}`;
}

/** The length-prefixed strings of an SSH wire-format key blob (RFC 4253 section 6.6), or a reason. */
function blobFields(blob: Buffer): Buffer[] | string {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) return 'the key data ends inside a length field';
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (length > blob.length - offset) return 'the key data is shorter than a length it declares';
    fields.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return fields;
}

/**
 * Why `line` is not one OpenSSH public key (`TYPE BASE64 [COMMENT]`, as in a `.pub` file), or undefined.
 * The key data is decoded and must name the same type, so a pasted private key, a truncated key or a
 * key with a mangled type is refused at registration instead of locking the user out at boot.
 */
export function sshKeyProblem(line: string): string | undefined {
  if (line.length > 16_384) return 'longer than 16384 characters; no public key is that long';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(line)) return 'must be one line without control characters';
  const [type = '', data = '', ...rest] = line.trim().split(/ +/);
  if (type.startsWith('-----')) return 'is a PEM block (a private key?); give the .pub file';
  const known = sshKeyTypes[type];
  if (known === undefined) {
    return `unsupported key type "${type.slice(0, 40)}"; expected one of ${Object.keys(sshKeyTypes).join(', ')}`;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0) return 'the key data is not base64';
  const fields = blobFields(Buffer.from(data, 'base64'));
  if (typeof fields === 'string') return fields;
  if (fields[0]?.toString('latin1') !== type) return `the key data is not a ${type} key`;
  if (fields.length !== known.fields) return `the key data has ${fields.length} fields, not ${known.fields}`;
  const problem = known.check?.(fields);
  if (problem !== undefined) return problem;
  if (rest.join(' ').length > 1024) return 'the comment is longer than 1024 characters';
  return undefined;
}

const sshKey = z.string().superRefine((value, ctx) => {
  const problem = sshKeyProblem(value);
  if (problem !== undefined)
    ctx.addIssue({ code: 'custom', message: `not an OpenSSH public key: ${problem}` });
});

const plainToken = (what: string) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, `${what}: 1 to 64 letters, digits, ".", "_" or "-"`);

/** Keys become EC2 tag paths and OpenStack `meta` keys: no "/" and nothing a shell would need quoted. */
export const attributeKeyPattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

const attributeValue = z
  .string()
  .max(1024, 'at most 1024 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');

const attributes = z
  .record(
    z
      .string()
      .regex(attributeKeyPattern, 'a key of letters, digits, "_", "." or "-", starting with a letter or "_"'),
    attributeValue,
  )
  .refine((value) => Object.keys(value).length <= 64, 'at most 64 attributes');

/** The admin API body's instance parameters; errors carry the JSON path of the bad field. */
export const instanceParamsShape = {
  ips: z
    .array(address)
    .max(16, 'at most 16 addresses')
    .refine((ips) => new Set(ips).size === ips.length, 'an address is listed twice')
    .optional(),
  publicIp: address.optional(),
  hostname: hostname.optional(),
  sshKeys: z.array(sshKey).max(64, 'at most 64 keys').optional(),
  instanceType: plainToken('an instance type').optional(),
  zone: plainToken('a zone').optional(),
  attributes: attributes.optional(),
};

const storedParams = z.object({
  ips: z.array(z.string()).default([]),
  publicIp: z.string().optional(),
  hostname: z.string().optional(),
  sshKeys: z.array(z.string()).default([]),
  instanceType: z.string().optional(),
  zone: z.string().optional(),
  attributes: z.record(z.string(), z.string()).default({}),
});

/** Parameters from the admin body's optional fields, with empty lists where none were given. */
export function paramsFromBody(
  body: {
    [K in keyof typeof instanceParamsShape]?: z.infer<(typeof instanceParamsShape)[K]>;
  },
): InstanceParams {
  const { ips, sshKeys, attributes: given, publicIp, hostname: host, instanceType, zone } = body;
  const optional = Object.entries({ publicIp, hostname: host, instanceType, zone }).filter(
    ([, v]) => v !== undefined,
  );
  return { ips: ips ?? [], sshKeys: sshKeys ?? [], attributes: given ?? {}, ...Object.fromEntries(optional) };
}

/** Parameters as stored (a JSON string in the ledger); anything unreadable reads as none. */
export function parseStoredParams(text: unknown): InstanceParams {
  if (typeof text !== 'string') return { ...emptyParams };
  try {
    const parsed = storedParams.safeParse(JSON.parse(text));
    if (!parsed.success) return { ...emptyParams };
    const { ips, sshKeys, attributes: attrs, ...rest } = parsed.data;
    const optional = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    return { ips, sshKeys, attributes: attrs, ...optional };
  } catch {
    return { ...emptyParams };
  }
}

export function hasParams(params: InstanceParams): boolean {
  return JSON.stringify(params) !== JSON.stringify(emptyParams);
}
