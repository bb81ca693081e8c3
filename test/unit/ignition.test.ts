import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataUrl, unitContentProblem, validateIgnition } from '../../shared/instances/ignition.ts';

const run = promisify(execFile);
const sha512 = 'a'.repeat(128);
const sha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const validConfigs: Record<string, unknown> = {
  '3.0.0': {
    ignition: {
      version: '3.0.0',
      config: {
        merge: [{ source: 'https://example.com/base.ign', verification: { hash: `sha512-${sha512}` } }],
      },
      timeouts: { httpResponseHeaders: 20, httpTotal: 0 },
      security: { tls: { certificateAuthorities: [{ source: 'data:,-----BEGIN%20CERTIFICATE-----' }] } },
    },
    storage: {
      disks: [
        { device: '/dev/sda', wipeTable: false, partitions: [{ label: 'data', number: 0, sizeMiB: 0 }] },
      ],
      filesystems: [
        { device: '/dev/disk/by-partlabel/data', format: 'ext4', path: '/var/data', label: 'DATA' },
      ],
      files: [
        { path: '/etc/hostname', mode: 420, overwrite: true, contents: { source: 'data:,node-1%0A' } },
        { path: '/etc/motd', contents: { source: 'data:text/plain;base64,aGVsbG8K', compression: null } },
      ],
      directories: [{ path: '/opt/app', mode: 493, user: { name: 'core' } }],
      links: [{ path: '/etc/localtime', target: '/usr/share/zoneinfo/UTC' }],
    },
    systemd: {
      units: [
        {
          name: 'app.service',
          enabled: true,
          contents: '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
          dropins: [{ name: 'override.conf', contents: '[Service]\nRestart=always\n' }],
        },
      ],
    },
    passwd: {
      users: [{ name: 'core', sshAuthorizedKeys: ['ssh-ed25519 AAAA core@example'] }],
      groups: [{ name: 'ops' }],
    },
  },
  '3.1.0': {
    ignition: {
      version: '3.1.0',
      config: {
        replace: {
          source: 'https://example.com/real.ign',
          compression: 'gzip',
          httpHeaders: [{ name: 'Authorization', value: 'Bearer abc' }],
          verification: { hash: `sha256-${sha256}` },
        },
      },
      proxy: { httpProxy: 'http://proxy.example.com:3128', noProxy: ['10.0.0.0/8'] },
    },
    storage: {
      filesystems: [{ device: '/dev/vdb1', format: 'btrfs', path: '/var', mountOptions: ['subvolid=5'] }],
    },
  },
  '3.2.0': {
    ignition: { version: '3.2.0' },
    storage: {
      disks: [{ device: '/dev/sda', partitions: [{ label: 'root', sizeMiB: 16384, resize: true }] }],
      luks: [
        {
          name: 'secret',
          device: '/dev/sdb',
          clevis: { tang: [{ url: 'https://tang.example.com', thumbprint: 'abc' }], threshold: 1 },
        },
      ],
      files: [{ path: '/etc/from-gcs', contents: { source: 'gs://bucket/object' } }],
    },
    passwd: { users: [{ name: 'old', shouldExist: false }] },
  },
  '3.3.0': {
    ignition: { version: '3.3.0' },
    kernelArguments: { shouldExist: ['console=ttyS0'], shouldNotExist: ['quiet'] },
    storage: { filesystems: [{ device: '/dev/vdb1', format: 'none', wipeFilesystem: true }] },
  },
  '3.4.0': {
    ignition: { version: '3.4.0' },
    storage: {
      files: [
        { path: '/usr/local/bin/tool', mode: 0o4755, contents: { source: 'arn:aws:s3:::bucket/tool' } },
      ],
      luks: [
        {
          name: 'fast',
          device: '/dev/nvme1n1',
          discard: true,
          openOptions: ['--perf-no_read_workqueue'],
          clevis: { tang: [{ url: 'https://tang.example.com', thumbprint: 'abc', advertisement: '{}' }] },
        },
      ],
    },
  },
  '3.5.0': {
    ignition: { version: '3.5.0' },
    storage: { luks: [{ name: 'z', device: '/dev/dasdb1', cex: { enabled: true } }] },
  },
};

interface InvalidCase {
  name: string;
  config: unknown;
  path: string;
  message: RegExp;
  /** What ignition-validate (Ignition 2.14, specs up to 3.3.0) says: the same, or only a warning. */
  ignitionValidate: 'rejects' | 'warns-only';
}

const v33 = (rest: Record<string, unknown>) => ({ ignition: { version: '3.3.0' }, ...rest });
const file = (entry: Record<string, unknown>) => v33({ storage: { files: [{ path: '/etc/a', ...entry }] } });

const invalidCases: InvalidCase[] = [
  {
    name: 'relative file path',
    config: v33({ storage: { files: [{ path: 'etc/a' }] } }),
    path: '$.storage.files[0].path',
    message: /absolute path/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'data: URL without a comma',
    config: file({ contents: { source: 'data:text/plain' } }),
    path: '$.storage.files[0].contents.source',
    message: /","/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'data: URL with bad base64',
    config: file({ contents: { source: 'data:;base64,###' } }),
    path: '$.storage.files[0].contents.source',
    message: /base64/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'data: URL with a bad percent escape',
    config: file({ contents: { source: 'data:,x%zz' } }),
    path: '$.storage.files[0].contents.source',
    message: /percent-encoding/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'unknown hash function',
    config: file({ contents: { source: 'data:,x', verification: { hash: 'md5-abc' } } }),
    path: '$.storage.files[0].contents.verification.hash',
    message: /unrecognized hash function "md5"/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'sha512 hash of the wrong length',
    config: file({ contents: { source: 'data:,x', verification: { hash: `sha512-${sha512.slice(2)}` } } }),
    path: '$.storage.files[0].contents.verification.hash',
    message: /128 hex digits/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'sha256 hash before spec 3.1.0',
    config: {
      ignition: { version: '3.0.0' },
      storage: {
        files: [{ path: '/a', contents: { source: 'data:,x', verification: { hash: `sha256-${sha256}` } } }],
      },
    },
    path: '$.storage.files[0].contents.verification.hash',
    message: /unrecognized hash function "sha256"/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'unsupported URL scheme',
    config: v33({
      ignition: { version: '3.3.0', config: { replace: { source: 'ftp://example.com/x.ign' } } },
    }),
    path: '$.ignition.config.replace.source',
    message: /scheme http, https, tftp, s3, data, gs/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'HTTP headers on a data: source',
    config: file({ contents: { source: 'data:,x', httpHeaders: [{ name: 'A', value: 'b' }] } }),
    path: '$.storage.files[0].contents.httpHeaders',
    message: /only allowed with http or https/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'unit name without a unit type',
    config: v33({ systemd: { units: [{ name: 'app' }] } }),
    path: '$.systemd.units[0].name',
    message: /unit name ending in \.service/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'drop-in not ending in .conf',
    config: v33({ systemd: { units: [{ name: 'a.service', dropins: [{ name: 'x.txt' }] }] } }),
    path: '$.systemd.units[0].dropins[0].name',
    message: /\.conf/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'a path both a file and a link',
    config: v33({ storage: { files: [{ path: '/a' }], links: [{ path: '/a', target: '/b' }] } }),
    path: '$.storage.links[0]',
    message: /duplicate path "\/a" \(already in files\)/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'duplicate user',
    config: v33({ passwd: { users: [{ name: 'a' }, { name: 'a' }] } }),
    path: '$.passwd.users[1]',
    message: /duplicate user name "a"/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'mode given as a string',
    config: file({ mode: '0644' }),
    path: '$.storage.files[0].mode',
    message: /expected an integer, got a string/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'mode out of range',
    config: file({ mode: 99999 }),
    path: '$.storage.files[0].mode',
    message: /0 to 4095/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'overwrite without a source',
    config: file({ overwrite: true }),
    path: '$.storage.files[0].overwrite',
    message: /overwrite must be false/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'link without a target',
    config: v33({ storage: { links: [{ path: '/a' }] } }),
    path: '$.storage.links[0].target',
    message: /is required/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'unknown filesystem format',
    config: v33({ storage: { filesystems: [{ device: '/dev/sda', format: 'ntfs' }] } }),
    path: '$.storage.filesystems[0].format',
    message: /ext4, btrfs, xfs, vfat, swap, none/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'files not a list',
    config: v33({ storage: { files: {} } }),
    path: '$.storage.files',
    message: /expected an array, got an object/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'missing version',
    config: { ignition: {} },
    path: '$.ignition.version',
    message: /is required/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'unknown version',
    config: { ignition: { version: '3.9.0' } },
    path: '$.ignition.version',
    message: /unsupported spec version "3.9.0"/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'legacy 2.x while not allowed',
    config: { ignition: { version: '2.2.0' } },
    path: '$.ignition.version',
    message: /legacy 2.x/,
    ignitionValidate: 'rejects',
  },
  {
    name: 'httpHeaders in a 3.0.0 config (Ignition would drop them silently)',
    config: {
      ignition: { version: '3.0.0' },
      storage: { files: [{ path: '/a', contents: { source: 'https://x/y', httpHeaders: [{ name: 'A' }] } }] },
    },
    path: '$.storage.files[0].contents.httpHeaders',
    message: /needs spec version 3.1.0 or later/,
    ignitionValidate: 'warns-only',
  },
  {
    name: 'luks in a 3.1.0 config',
    config: { ignition: { version: '3.1.0' }, storage: { luks: [{ name: 'a', device: '/dev/sdb' }] } },
    path: '$.storage.luks',
    message: /needs spec version 3.2.0/,
    ignitionValidate: 'warns-only',
  },
];

/**
 * Rules Ignition enforces at boot beyond field types, each as a config it accepts and the smallest change
 * it refuses; both sides are also put to ignition-validate below.
 */
interface RuleCase {
  name: string;
  valid: unknown;
  invalid: unknown;
  path: string;
  message: RegExp;
}

const v30 = (rest: Record<string, unknown>) => ({ ignition: { version: '3.0.0' }, ...rest });
const v32 = (rest: Record<string, unknown>) => ({ ignition: { version: '3.2.0' }, ...rest });
const storage = (rest: Record<string, unknown>) => v33({ storage: rest });
const disk = (partitions: unknown[]) => storage({ disks: [{ device: '/dev/sda', partitions }] });
const unit = (contents: string) => v33({ systemd: { units: [{ name: 'a.service', contents }] } });
const dropin = (contents: string) =>
  v33({ systemd: { units: [{ name: 'a.service', dropins: [{ name: 'x.conf', contents }] }] } });
const source = (url: string) => file({ contents: { source: url } });
const raid = (entry: Record<string, unknown>) =>
  storage({ raid: [{ name: 'md0', level: 'raid1', devices: ['/dev/sda', '/dev/sdb'], ...entry }] });

const ruleCases: RuleCase[] = [
  {
    name: 'a file path with "//"',
    valid: storage({ files: [{ path: '/etc/hostname' }] }),
    invalid: storage({ files: [{ path: '/etc//hostname' }] }),
    path: '$.storage.files[0].path',
    message: /not fully simplified: "\/etc\/\/hostname" \(expected "\/etc\/hostname"\)/,
  },
  {
    name: 'a directory path with ".."',
    valid: storage({ directories: [{ path: '/opt' }] }),
    invalid: storage({ directories: [{ path: '/etc/../opt' }] }),
    path: '$.storage.directories[0].path',
    message: /not fully simplified/,
  },
  {
    name: 'a link path with a trailing "/"',
    valid: storage({ links: [{ path: '/etc/a', target: '/x/' }] }),
    invalid: storage({ links: [{ path: '/etc/a/', target: '/x' }] }),
    path: '$.storage.links[0].path',
    message: /not fully simplified/,
  },
  {
    name: 'a filesystem mount path with "/."',
    valid: storage({ filesystems: [{ device: '/dev/sdb', format: 'ext4', path: '/var' }] }),
    invalid: storage({ filesystems: [{ device: '/dev/sdb', format: 'ext4', path: '/var/.' }] }),
    path: '$.storage.filesystems[0].path',
    message: /not fully simplified/,
  },
  {
    name: 'unit contents with an unterminated section',
    valid: unit('[Unit]\nDescription=a\n'),
    invalid: unit('[Unit'),
    path: '$.systemd.units[0].contents',
    message: /invalid unit content: unable to find end of section/,
  },
  {
    name: 'unit contents with an option line without "="',
    valid: unit('[Service]\nExecStart=/bin/true \\\n  --flag\n'),
    invalid: unit('[Service]\nExecStart /bin/true\n'),
    path: '$.systemd.units[0].contents',
    message: /invalid unit content: unexpected newline/,
  },
  {
    name: 'unit contents with text after a section header',
    valid: unit('# [comment\n[Unit]  \n'),
    invalid: unit('[Unit] x\n'),
    path: '$.systemd.units[0].contents',
    message: /invalid unit content: found garbage after section name \[Unit\]: "x"/,
  },
  {
    name: 'unit contents with a line systemd would truncate',
    valid: unit(`[Unit]\nDescription=${'x'.repeat(2000)}\n`),
    invalid: unit(`[Unit]\nDescription=${'x'.repeat(2100)}\n`),
    path: '$.systemd.units[0].contents',
    message: /invalid unit content: line too long/,
  },
  {
    name: 'drop-in contents that do not parse',
    valid: dropin('[Unit]\n'),
    invalid: dropin('[Unit'),
    path: '$.systemd.units[0].dropins[0].contents',
    message: /invalid unit content/,
  },
  {
    name: 'an empty link target from spec 3.3.0 (3.2.0 allows it)',
    valid: v32({ storage: { links: [{ path: '/etc/a', target: '' }] } }),
    invalid: storage({ links: [{ path: '/etc/a', target: '' }] }),
    path: '$.storage.links[0].target',
    message: /link target is required/,
  },
  {
    name: 'a file owner with both id and name',
    valid: storage({ files: [{ path: '/etc/a', user: { id: 0, name: '' } }] }),
    invalid: storage({ files: [{ path: '/etc/a', user: { id: 0, name: 'root' } }] }),
    path: '$.storage.files[0].user',
    message: /cannot set both id and name/,
  },
  {
    name: 'a directory group with both id and name',
    valid: storage({ directories: [{ path: '/etc/a', group: { name: 'wheel' } }] }),
    invalid: storage({ directories: [{ path: '/etc/a', group: { id: 10, name: 'wheel' } }] }),
    path: '$.storage.directories[0].group',
    message: /cannot set both id and name/,
  },
  {
    name: 'a partition with neither number nor label',
    valid: disk([{ label: '', sizeMiB: 1 }]),
    invalid: disk([{ number: 0, sizeMiB: 1 }]),
    path: '$.storage.disks[0].partitions[0]',
    message: /a partition number >= 1 or a label must be specified/,
  },
  {
    name: 'two partitions with one number',
    valid: disk([{ number: 1 }, { number: 2 }, { number: 0, label: 'a' }, { number: 0, label: 'b' }]),
    invalid: disk([{ number: 1 }, { number: 1 }]),
    path: '$.storage.disks[0].partitions[1]',
    message: /partition numbers collide: 1 is used twice/,
  },
  {
    name: 'two partitions with one label',
    valid: disk([
      { number: 1, label: 'a' },
      { number: 2, label: 'b' },
    ]),
    invalid: disk([
      { number: 1, label: 'a' },
      { number: 2, label: 'a' },
    ]),
    path: '$.storage.disks[0].partitions[1]',
    message: /same partition label "a" twice/,
  },
  {
    name: 'a partition label with a colon',
    valid: disk([{ label: 'a-b' }]),
    invalid: disk([{ label: 'a:b' }]),
    path: '$.storage.disks[0].partitions[0].label',
    message: /may not contain ":"/,
  },
  {
    name: 'a partition label over 36 bytes (Ignition counts UTF-8 bytes)',
    valid: disk([{ label: '\u00e9'.repeat(18) }]),
    invalid: disk([{ label: '\u00e9'.repeat(19) }]),
    path: '$.storage.disks[0].partitions[0].label',
    message: /may not exceed 36 characters \(bytes\), got 38/,
  },
  {
    name: 'a merge source given twice',
    valid: v33({
      ignition: {
        version: '3.3.0',
        config: { merge: [{ source: 'https://a/x' }, { source: 'https://a/y' }] },
      },
    }),
    invalid: v33({
      ignition: {
        version: '3.3.0',
        config: { merge: [{ source: 'https://a/x' }, { source: 'https://a/x' }] },
      },
    }),
    path: '$.ignition.config.merge[1]',
    message: /duplicate merge source "https:\/\/a\/x"/,
  },
  {
    name: 'a kernel argument both wanted and unwanted',
    valid: v33({ kernelArguments: { shouldExist: ['quiet'], shouldNotExist: ['splash'] } }),
    invalid: v33({ kernelArguments: { shouldExist: ['quiet'], shouldNotExist: ['quiet'] } }),
    path: '$.kernelArguments.shouldNotExist[0]',
    message: /kernel argument "quiet" is also in shouldExist/,
  },
  {
    name: 'a kernel argument listed twice',
    valid: v33({ kernelArguments: { shouldExist: ['quiet', 'splash'] } }),
    invalid: v33({ kernelArguments: { shouldExist: ['quiet', 'quiet'] } }),
    path: '$.kernelArguments.shouldExist[1]',
    message: /duplicate kernel argument "quiet"/,
  },
  {
    name: 'a RAID array without devices',
    valid: raid({}),
    invalid: raid({ devices: [] }),
    path: '$.storage.raid[0].devices',
    message: /raid devices required/,
  },
  {
    name: 'a RAID device listed twice',
    valid: raid({ devices: ['/dev/sda', '/dev/sdb'] }),
    invalid: raid({ devices: ['/dev/sda', '/dev/sda'] }),
    path: '$.storage.raid[0].devices[1]',
    message: /duplicate RAID device "\/dev\/sda"/,
  },
  {
    name: 'spares on a raid0 array',
    valid: raid({ level: 'raid1', spares: 1 }),
    invalid: raid({ level: 'raid0', spares: 1 }),
    path: '$.storage.raid[0].level',
    message: /spares unsupported/,
  },
  {
    name: 'a directory under a link of the same config',
    valid: storage({ links: [{ path: '/a', target: '/x' }], directories: [{ path: '/ab' }] }),
    invalid: storage({ links: [{ path: '/a', target: '/x' }], directories: [{ path: '/a/b' }] }),
    path: '$.storage.directories[0]',
    message: /directory path includes link in config: "\/a" is a link/,
  },
  {
    name: 'a file under a link of the same config',
    valid: storage({ links: [{ path: '/a', target: '/x' }], files: [{ path: '/x/b' }] }),
    invalid: storage({ links: [{ path: '/a', target: '/x' }], files: [{ path: '/a/b/c' }] }),
    path: '$.storage.files[0]',
    message: /file path includes link in config/,
  },
  {
    name: 'a link under a link of the same config',
    valid: storage({
      links: [
        { path: '/a', target: '/x' },
        { path: '/x/d', target: '/y' },
      ],
    }),
    invalid: storage({
      links: [
        { path: '/a', target: '/x' },
        { path: '/a/d', target: '/y' },
      ],
    }),
    path: '$.storage.links[1]',
    message: /link path includes link in config/,
  },
  {
    name: 'a hard link to a directory of the same config',
    valid: storage({ links: [{ path: '/a', target: '/x', hard: false }], directories: [{ path: '/x' }] }),
    invalid: storage({ links: [{ path: '/a', target: '/x', hard: true }], directories: [{ path: '/x' }] }),
    path: '$.storage.links[0]',
    message: /hard link target is a directory/,
  },
  {
    name: 'a data: URL with a raw space',
    valid: source('data:,x%20y'),
    invalid: source('data:,x y'),
    path: '$.storage.files[0].contents.source',
    message: /invalid data character " " in data: URL \(percent-encode it as "%20"\)/,
  },
  {
    name: 'a data: URL with a raw "#"',
    valid: source('data:,a%23b?c=d'),
    invalid: source('data:,a#b'),
    path: '$.storage.files[0].contents.source',
    message: /invalid data character "#"/,
  },
  {
    name: 'a data: URL with unpadded base64',
    valid: source('data:;base64,aGk='),
    invalid: source('data:;base64,aGk'),
    path: '$.storage.files[0].contents.source',
    message: /not valid \(padded\) base64/,
  },
  {
    name: 'a data: URL with an unknown top-level media type',
    valid: source('data:x-custom/thing;charset="utf-8",x'),
    invalid: source('data:TEXT/plain,x'),
    path: '$.storage.files[0].contents.source',
    message: /invalid media type "TEXT"/,
  },
  {
    name: 'a data: URL with a control character',
    valid: source('data:,a%0Ab'),
    invalid: source('data:,a\nb'),
    path: '$.storage.files[0].contents.source',
    message: /control characters/,
  },
  {
    name: 'a user group listed twice',
    valid: v33({ passwd: { users: [{ name: 'a', groups: ['wheel', 'docker'] }] } }),
    invalid: v33({ passwd: { users: [{ name: 'a', groups: ['wheel', 'wheel'] }] } }),
    path: '$.passwd.users[0].groups[1]',
    message: /duplicate group "wheel"/,
  },
  {
    name: 'a noProxy entry listed twice',
    valid: v33({ ignition: { version: '3.3.0', proxy: { noProxy: ['a', 'b'] } } }),
    invalid: v33({ ignition: { version: '3.3.0', proxy: { noProxy: ['a', 'a'] } } }),
    path: '$.ignition.proxy.noProxy[1]',
    message: /duplicate noProxy entry "a"/,
  },
  {
    name: 'two partitions with overlapping extents',
    valid: disk([
      { number: 1, startMiB: 1, sizeMiB: 99 },
      { number: 2, startMiB: 100, sizeMiB: 0 },
    ]),
    invalid: disk([
      { number: 1, startMiB: 1, sizeMiB: 100 },
      { number: 2, startMiB: 100, sizeMiB: 10 },
    ]),
    path: '$.storage.disks[0].partitions[1]',
    message: /partitions overlap: this one and partitions\[0\] share MiB 100/,
  },
  {
    name: 'a 3.0.0 file path with "/./"',
    valid: v30({ storage: { files: [{ path: '/etc/a' }] } }),
    invalid: v30({ storage: { files: [{ path: '/etc/./a' }] } }),
    path: '$.storage.files[0].path',
    message: /not fully simplified/,
  },
];

describe('Ignition validation', () => {
  it.each(Object.entries(validConfigs))('accepts a full valid %s config', (version, config) => {
    const result = validateIgnition(config, { allowLegacy: false });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.version).toBe(version);
  });

  it.each(invalidCases.map((c) => [c.name, c] as const))('rejects %s, naming its path', (_name, c) => {
    const result = validateIgnition(c.config, { allowLegacy: false });
    expect(result.errors.map((e) => e.path)).toContain(c.path);
    const issue = result.errors.find((e) => e.path === c.path);
    expect(issue?.message).toMatch(c.message);
  });

  it.each(ruleCases.map((c) => [c.name, c] as const))('accepts the valid side of %s', (_name, c) => {
    expect(validateIgnition(c.valid, { allowLegacy: false }).errors).toEqual([]);
  });

  it.each(ruleCases.map((c) => [c.name, c] as const))('rejects %s, naming its path', (_name, c) => {
    const result = validateIgnition(c.invalid, { allowLegacy: false });
    expect(result.errors.map((e) => e.path)).toContain(c.path);
    expect(result.errors.find((e) => e.path === c.path)?.message).toMatch(c.message);
  });

  it('checks the same rules in spec 3.4.0 and 3.5.0 configs', () => {
    for (const version of ['3.4.0', '3.5.0']) {
      const config = {
        ignition: { version },
        storage: { files: [{ path: '/etc//a' }], links: [{ path: '/l', target: '' }] },
      };
      expect(validateIgnition(config, { allowLegacy: false }).errors.map((e) => e.path)).toEqual([
        '$.storage.files[0].path',
        '$.storage.links[0].target',
      ]);
    }
  });

  it('refuses a node at the path of a unit with contents from spec 3.4.0 on, as Ignition 2.15+ does', () => {
    const config = (version: string, contents: string) => ({
      ignition: { version },
      systemd: { units: [{ name: 'a.service', contents, dropins: [{ name: 'b.conf', contents }] }] },
      storage: {
        files: [{ path: '/etc/systemd/system/a.service' }],
        links: [{ path: '/etc/systemd/system/a.service.d/b.conf', target: '/x' }],
      },
    });
    const paths = (version: string, contents: string) =>
      validateIgnition(config(version, contents), { allowLegacy: false }).errors.map((e) => e.path);
    expect(paths('3.3.0', '[Unit]\n')).toEqual([]);
    expect(paths('3.4.0', '')).toEqual([]);
    expect(paths('3.4.0', '[Unit]\n')).toEqual(['$.storage.files[0].path', '$.storage.links[0].path']);
    expect(paths('3.5.0', '[Unit]\n')).toHaveLength(2);
  });

  it('parses unit files as go-systemd does: text before the first section and comments are skipped', () => {
    expect(unitContentProblem('')).toBeUndefined();
    expect(unitContentProblem('garbage\n[Unit]\r\nA=1\r\n')).toBeUndefined();
    expect(unitContentProblem('[Unit]\n# x \\\n[not a section\nA=1')).toBeUndefined();
    expect(unitContentProblem('[Unit]\nA=b\\\n  continued\n=empty name\n')).toBeUndefined();
    expect(unitContentProblem('[Unit]\nA')).toMatch(/end of file in an option name/);
    expect(unitContentProblem('[Unit]\nA=b\\ x\nB')).toMatch(/end of file in an option name/);
    expect(unitContentProblem('text [Unit')).toMatch(/end of section/);
  });

  it('accepts legacy 2.x only when allowed', () => {
    const legacy = { ignition: { version: '2.2.0' }, storage: { files: [] } };
    expect(validateIgnition(legacy, { allowLegacy: true }).errors).toEqual([]);
    expect(validateIgnition(legacy, { allowLegacy: false }).errors).toHaveLength(1);
  });

  it('warns about unknown keys but accepts the config, as Ignition does', () => {
    const result = validateIgnition(v33({ storag: {} }), { allowLegacy: false });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      { path: '$.storag', message: 'unknown key, Ignition ignores it; did you mean `storage`?' },
    ]);
  });

  it('refuses unknown keys when asked, naming each path and the nearest key of the declared version', () => {
    const config = v33({
      storag: {},
      colour: 'blue',
      passwd: { users: [{ name: 'core', sshAuthorisedKeys: [] }] },
    });
    const result = validateIgnition(config, { allowLegacy: false, unknownKeys: 'reject' });
    expect(result.warnings).toEqual([]);
    const refused = 'unknown key, refused because unknown Ignition keys are rejected';
    expect(result.errors).toEqual([
      {
        path: '$.passwd.users[0].sshAuthorisedKeys',
        message: `${refused}; did you mean \`sshAuthorizedKeys\`?`,
      },
      { path: '$.storag', message: `${refused}; did you mean \`storage\`?` },
      { path: '$.colour', message: refused },
    ]);
  });

  it('suggests only keys the declared spec version has', () => {
    const old = validateIgnition(
      { ignition: { version: '3.0.0' }, kernelArgument: {} },
      { allowLegacy: false, unknownKeys: 'reject' },
    );
    expect(old.errors).toEqual([
      {
        path: '$.kernelArgument',
        message: 'unknown key, refused because unknown Ignition keys are rejected',
      },
    ]);
    const recent = validateIgnition(
      { ignition: { version: '3.3.0' }, kernelArgument: {} },
      { allowLegacy: false, unknownKeys: 'reject' },
    );
    expect(recent.errors[0]?.message).toMatch(/did you mean `kernelArguments`\?$/);
  });

  it('reports every bad field, not only the first', () => {
    const result = validateIgnition(
      v33({
        storage: { files: [{ path: 'a' }, { path: '/b', mode: -1 }] },
        systemd: { units: [{ name: 'x' }] },
      }),
      { allowLegacy: false },
    );
    expect(result.errors.map((e) => e.path)).toEqual([
      '$.storage.files[0].path',
      '$.storage.files[1].mode',
      '$.systemd.units[0].name',
    ]);
  });

  it('rejects a non-object config', () => {
    expect(validateIgnition([], { allowLegacy: false }).errors[0]).toEqual({
      path: '$',
      message: 'expected an Ignition config object, got an array',
    });
  });

  it('checks data: URLs per RFC 2397', () => {
    expect(checkDataUrl('data:,')).toBeUndefined();
    expect(checkDataUrl('data:text/plain;charset=utf-8;base64,aGVsbG8=')).toBeUndefined();
    expect(checkDataUrl('data:application/octet-stream,%00%FF')).toBeUndefined();
    expect(checkDataUrl('data:text,x')).toMatch(/media type/);
    expect(checkDataUrl('data:;base64,a')).toMatch(/base64/);
    expect(checkDataUrl('data:text/plain;charset,x')).toMatch(/parameter/);
    expect(checkDataUrl('data:text/plain;charset="utf\\x2d8";base64,aR==')).toBeUndefined();
    expect(checkDataUrl('data:text/plain;a="\\q",x')).toMatch(/invalid escape/);
    expect(checkDataUrl('data:text/plain;a=b=c,x')).toMatch(/parameter value/);
    expect(checkDataUrl('data:text/plain;a=,x')).toMatch(/empty value/);
    expect(checkDataUrl('data:;base64,aGk%3D')).toMatch(/base64/);
    expect(checkDataUrl('data:,\u00e9')).toMatch(/invalid data character "\u00e9" .*"%C3%A9"/);
  });
});

describe('agreement with ignition-validate (Ignition 2.14: specs 3.0.0 to 3.3.0)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-ignition-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function ignitionValidate(config: unknown): Promise<{ ok: boolean; output: string }> {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.ign`);
    await writeFile(path, JSON.stringify(config));
    try {
      const { stdout, stderr } = await run('ignition-validate', [path]);
      return { ok: true, output: stdout + stderr };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof failed.code !== 'number') throw error;
      return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
    }
  }

  it.each(['3.0.0', '3.1.0', '3.2.0', '3.3.0'])('both accept the valid %s config', async (version) => {
    const verdict = await ignitionValidate(validConfigs[version]);
    expect(verdict).toEqual({ ok: true, output: '' });
  });

  it.each(['3.4.0', '3.5.0'])('ignition-validate 2.14 cannot check %s (documented gap)', async (version) => {
    const verdict = await ignitionValidate(validConfigs[version]);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toMatch(/unsupported config version/);
  });

  it.each(ruleCases.map((c) => [c.name, c] as const))(
    'on %s: accepts the valid side, refuses the invalid one',
    async (_name, c) => {
      expect(await ignitionValidate(c.valid)).toEqual({ ok: true, output: '' });
      const verdict = await ignitionValidate(c.invalid);
      expect(verdict.ok).toBe(false);
      expect(verdict.output).toContain(`error at ${c.path.replace(/\[(\d+)\]/g, '.$1')}, `);
    },
  );

  it('agrees on generated configs around the storage, systemd and kernel-argument rules', async () => {
    const pick = <T>(...values: T[]) => fc.constantFrom(...values);
    const path = fc.oneof(
      { arbitrary: pick('/a', '/a/b', '/a/b/c', '/x', '/x/y', '/ab', '/q'), weight: 12 },
      { arbitrary: pick('/a/', '/a//b', '/a/./b', '/', '/a/..'), weight: 1 },
    );
    const owner = fc.record({ id: pick(0, 1), name: pick('', 'core') }, { requiredKeys: [] });
    const generated = fc.record({
      version: pick('3.0.0', '3.1.0', '3.2.0', '3.3.0'),
      files: fc.array(fc.record({ path, user: owner }, { requiredKeys: ['path'] }), { maxLength: 2 }),
      directories: fc.array(fc.record({ path, group: owner }, { requiredKeys: ['path'] }), { maxLength: 2 }),
      links: fc.array(fc.record({ path, target: fc.oneof(path, pick('', 'rel')), hard: fc.boolean() }), {
        maxLength: 2,
      }),
      partitions: fc.array(
        fc.record(
          {
            number: pick(0, 1, 2, 3),
            label: fc.oneof(
              { arbitrary: pick('', 'a', 'b', 'c', '\u00e9'.repeat(18)), weight: 8 },
              { arbitrary: pick('a:b', '\u00e9'.repeat(19)), weight: 1 },
            ),
            startMiB: pick(0, 1, 100),
            sizeMiB: pick(0, 10, 200),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 2 },
      ),
      devices: fc.array(pick('/dev/a', '/dev/b', '/dev//c'), { maxLength: 2 }),
      merge: fc.array(pick('https://a/x', 'https://a/y', 'data:,x', 'data:,x y'), { maxLength: 2 }),
      kernel: fc.record({
        shouldExist: fc.array(pick('a', 'b'), { maxLength: 2 }),
        shouldNotExist: fc.array(pick('a', 'c'), { maxLength: 2 }),
      }),
      contents: pick('[Unit]\n', '[Unit]\nA=1\\\n B', 'x', '[Unit', '[Unit]\nA'),
    });
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(generated, async (g) => {
        const config: Record<string, unknown> = {
          ignition: { version: g.version, config: { merge: g.merge.map((url) => ({ source: url })) } },
          storage: {
            files: g.files,
            directories: g.directories,
            links: g.links,
            disks: [{ device: '/dev/sda', partitions: g.partitions }],
            raid: [{ name: 'md0', level: 'raid1', devices: g.devices }],
          },
          systemd: { units: [{ name: 'a.service', contents: g.contents }] },
        };
        if (g.version === '3.3.0') config.kernelArguments = g.kernel;
        const ours = validateIgnition(config, { allowLegacy: false }).errors;
        const real = await ignitionValidate(config);
        if (ours.length === 0) accepted += 1;
        expect(real.ok, `ours: ${JSON.stringify(ours)}, real: ${real.output}`).toBe(ours.length === 0);
      }),
      { numRuns: 250, seed: 20261126 },
    );
    expect(accepted).toBeGreaterThan(5);
  });

  it.each(invalidCases.map((c) => [c.name, c] as const))('on %s', async (_name, c) => {
    const verdict = await ignitionValidate(c.config);
    if (c.ignitionValidate === 'rejects') {
      expect(verdict.ok).toBe(false);
    } else {
      expect(verdict.ok).toBe(true);
      expect(verdict.output).toMatch(/Unused key/);
    }
  });
});
