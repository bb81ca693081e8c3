import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateIgnition } from '../../shared/instances/ignition.ts';

/**
 * Rules of the storage sections (filesystems, LUKS, Clevis) and of config sources, each as a config
 * Ignition accepts and the smallest change it refuses, put to our validator and to ignition-validate
 * (Ignition 2.14), which must agree on both sides and on the path of the error.
 */
interface RuleCase {
  name: string;
  valid: unknown;
  invalid: unknown;
  path: string;
  message: RegExp;
}

const at = (version: string, rest: Record<string, unknown>) => ({ ignition: { version }, ...rest });
const filesystem = (entry: Record<string, unknown>) =>
  at('3.3.0', { storage: { filesystems: [{ device: '/dev/sdb', ...entry }] } });
const luks = (entry: Record<string, unknown>) =>
  at('3.3.0', { storage: { luks: [{ name: 'data', device: '/dev/sdb', ...entry }] } });
const clevis = (entry: Record<string, unknown>) => luks({ clevis: entry });
const merge = (version: string, source: string) =>
  ({ ignition: { version, config: { merge: [{ source }] } } }) as const;
const authority = (version: string, source: string) => ({
  ignition: { version, security: { tls: { certificateAuthorities: [{ source }] } } },
});

const cases: RuleCase[] = [
  ...(
    [
      ['ext4', 16],
      ['xfs', 12],
      ['vfat', 11],
      ['swap', 15],
      ['btrfs', 256],
    ] as const
  ).map(([format, limit]) => ({
    name: `an ${format} label over ${limit} bytes`,
    valid: filesystem({ format, label: 'x'.repeat(limit) }),
    invalid: filesystem({ format, label: 'x'.repeat(limit + 1) }),
    path: '$.storage.filesystems[0].label',
    message: new RegExp(`cannot be longer than ${limit} characters when using ${format}`),
  })),
  {
    name: 'a vfat label counted in UTF-8 bytes',
    valid: filesystem({ format: 'vfat', label: '\u00e9'.repeat(5) }),
    invalid: filesystem({ format: 'vfat', label: '\u00e9'.repeat(6) }),
    path: '$.storage.filesystems[0].label',
    message: /longer than 11 characters/,
  },
  {
    name: 'a filesystem path with no format',
    valid: filesystem({ path: '', label: '', wipeFilesystem: false, options: [] }),
    invalid: filesystem({ path: '/var' }),
    path: '$.storage.filesystems[0].format',
    message: /format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions/,
  },
  {
    name: 'wiping a filesystem of no format',
    valid: filesystem({ format: '' }),
    invalid: filesystem({ format: '', wipeFilesystem: true }),
    path: '$.storage.filesystems[0].format',
    message: /format cannot be empty/,
  },
  {
    name: 'a label on a filesystem of no format',
    valid: filesystem({ format: 'none', label: 'x'.repeat(300) }),
    invalid: filesystem({ label: 'data' }),
    path: '$.storage.filesystems[0].label',
    message: /must specify format if label is specified/,
  },
  {
    name: 'a LUKS name with a slash',
    valid: luks({ name: 'a-b' }),
    invalid: luks({ name: 'a/b' }),
    path: '$.storage.luks[0].name',
    message: /device names cannot contain slashes/,
  },
  {
    name: 'a LUKS label over 47 bytes',
    valid: luks({ label: 'x'.repeat(47) }),
    invalid: luks({ label: 'x'.repeat(48) }),
    path: '$.storage.luks[0].label',
    message: /cannot be longer than 47 characters/,
  },
  {
    name: 'a custom Clevis pin Clevis does not know',
    valid: clevis({ custom: { pin: 'sss', config: '{}' } }),
    invalid: clevis({ custom: { pin: 'yubikey', config: '{}' } }),
    path: '$.storage.luks[0].clevis.custom.pin',
    message: /unsupported clevis pin "yubikey"/,
  },
  {
    name: 'a custom Clevis config with no pin',
    valid: clevis({ tpm2: true, custom: { pin: '', config: '' } }),
    invalid: clevis({ custom: { pin: '', config: '{}' } }),
    path: '$.storage.luks[0].clevis.custom.pin',
    message: /missing required custom clevis pin/,
  },
  {
    name: 'a custom Clevis pin with no config',
    valid: clevis({ custom: { pin: 'tpm2', config: '{"pcr_ids":"7"}' } }),
    invalid: clevis({ custom: { pin: 'tpm2', config: '' } }),
    path: '$.storage.luks[0].clevis.custom.config',
    message: /missing required custom clevis config/,
  },
  {
    name: 'a custom Clevis pin beside a threshold',
    valid: clevis({ threshold: 0, tpm2: false, tang: [], custom: { pin: 'tpm2', config: '{}' } }),
    invalid: clevis({ threshold: 1, custom: { pin: 'tpm2', config: '{}' } }),
    path: '$.storage.luks[0].clevis',
    message: /cannot use custom clevis config with tpm2, tang, or threshold/,
  },
  {
    name: 'a tang server with no thumbprint',
    valid: clevis({ tang: [{ url: 'http://tang.example.com', thumbprint: 'abc' }] }),
    invalid: clevis({ tang: [{ url: 'http://tang.example.com', thumbprint: '' }] }),
    path: '$.storage.luks[0].clevis.tang[0].thumbprint',
    message: /thumbprint is required/,
  },
  {
    name: 'a merged config with an empty source from 3.1.0 (3.0.0 allows it)',
    valid: merge('3.0.0', ''),
    invalid: merge('3.1.0', ''),
    path: '$.ignition.config.merge[0]',
    message: /source is required/,
  },
  {
    name: 'a certificate authority with an empty source from 3.1.0',
    valid: authority('3.1.0', 'data:,x'),
    invalid: authority('3.1.0', ''),
    path: '$.ignition.security.tls.certificateAuthorities[0]',
    message: /source is required/,
  },
  {
    name: 'a certificate authority with an empty source in 3.0.0',
    valid: authority('3.0.0', 'data:,x'),
    invalid: authority('3.0.0', ''),
    path: '$.ignition.security.tls.certificateAuthorities[0].source',
    message: /needs a source URL/,
  },
  {
    name: 'a merged config without a source from 3.1.0 (3.0.0 ignores the entry)',
    valid: { ignition: { version: '3.0.0', config: { merge: [{}] } } },
    invalid: { ignition: { version: '3.2.0', config: { merge: [{}] } } },
    path: '$.ignition.config.merge[0]',
    message: /source is required/,
  },
  {
    name: 'a merged config with a hash and no source from 3.1.0 (3.0.0 ignores the entry)',
    valid: {
      ignition: {
        version: '3.0.0',
        config: { merge: [{ verification: { hash: `sha512-${'a'.repeat(128)}` } }] },
      },
    },
    invalid: {
      ignition: {
        version: '3.1.0',
        config: { merge: [{ verification: { hash: `sha512-${'a'.repeat(128)}` } }] },
      },
    },
    path: '$.ignition.config.merge[0].verification.hash',
    message: /source must be specified if verification is specified/,
  },
  {
    name: 'a hash with nothing to fetch',
    valid: { ignition: { version: '3.3.0', config: { replace: {} } } },
    invalid: {
      ignition: {
        version: '3.3.0',
        config: { replace: { verification: { hash: `sha512-${'a'.repeat(128)}` } } },
      },
    },
    path: '$.ignition.config.replace.verification.hash',
    message: /source must be specified if verification is specified/,
  },
  {
    name: 'a file append entry with a hash and no source',
    valid: at('3.3.0', { storage: { files: [{ path: '/a', append: [{ source: 'data:,x' }] }] } }),
    invalid: at('3.3.0', {
      storage: { files: [{ path: '/a', append: [{ verification: { hash: `sha256-${'b'.repeat(64)}` } }] }] },
    }),
    path: '$.storage.files[0].append[0].verification.hash',
    message: /source must be specified/,
  },
  {
    name: 'deleting a partition on a disk with a partition numbered 0',
    valid: at('3.3.0', {
      storage: {
        disks: [
          {
            device: '/dev/sda',
            partitions: [
              { number: 1, sizeMiB: 0 },
              { number: 2, shouldExist: false },
            ],
          },
        ],
      },
    }),
    invalid: at('3.3.0', {
      storage: {
        disks: [{ device: '/dev/sda', partitions: [{ label: 'a' }, { number: 2, shouldExist: false }] }],
      },
    }),
    path: '$.storage.disks[0].partitions',
    message: /shouldExist false cannot share a disk with partitions numbered 0/,
  },
];

describe('storage and source rules, as ignition-validate applies them', () => {
  let dir: string;
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-ignition-rules-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function ignitionValidate(config: unknown): Promise<{ ok: boolean; output: string }> {
    count += 1;
    const path = join(dir, `${count}.ign`);
    await writeFile(path, JSON.stringify(config));
    return new Promise((resolve) => {
      execFile('ignition-validate', [path], { encoding: 'utf8' }, (error, stdout, stderr) => {
        resolve({ ok: error === null, output: `${stdout}${stderr}` });
      });
    });
  }

  it.each(cases.map((c) => [c.name, c] as const))('%s: accepts the valid side', async (_name, c) => {
    expect(validateIgnition(c.valid, { allowLegacy: false }).errors).toEqual([]);
    expect(await ignitionValidate(c.valid)).toEqual({ ok: true, output: '' });
  });

  it.each(cases.map((c) => [c.name, c] as const))(
    '%s: refuses the invalid side at its path',
    async (_name, c) => {
      const ours = validateIgnition(c.invalid, { allowLegacy: false }).errors;
      expect(ours.find((issue) => issue.path === c.path)?.message).toMatch(c.message);
      const real = await ignitionValidate(c.invalid);
      expect(real.ok).toBe(false);
      expect(real.output).toContain(`error at ${c.path.replace(/\[(\d+)\]/g, '.$1')}, `);
    },
  );

  it('leaves an empty filesystem path and an empty homeDir unset, as Ignition does', () => {
    const config = at('3.3.0', {
      storage: { filesystems: [{ device: '/dev/sdb', format: 'ext4', path: '' }] },
      passwd: { users: [{ name: 'core', homeDir: '' }] },
    });
    expect(validateIgnition(config, { allowLegacy: false }).errors).toEqual([]);
  });
});
