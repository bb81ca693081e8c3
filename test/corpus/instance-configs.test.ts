import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { validateCloudConfig } from '../../shared/instances/cloud-config.ts';
import {
  type IgnitionValidation,
  supportedIgnitionVersions,
  type ValidationIssue,
  validateIgnition,
} from '../../shared/instances/ignition.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';
import {
  isAtOrUnder,
  type Path,
  render,
  richConfig,
  richVersions,
  wrongTypeCases,
} from './ignition-samples.ts';

let dir: string;
let fileCounter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cldist-corpus-ign-'));
});

afterAll(async () => {
  reportTallies('instance-configs');
  await rm(dir, { recursive: true, force: true });
});

/** The real client's validator (Debian `ignition` 2.14): it knows specs 3.0.0 to 3.3.0. */
async function ignitionValidate(config: unknown): Promise<{ ok: boolean; output: string }> {
  fileCounter += 1;
  const path = join(dir, `config-${fileCounter}.ign`);
  await writeFile(path, JSON.stringify(config));
  return new Promise((resolve) => {
    execFile('ignition-validate', [path], { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ ok: error === null, output: `${stdout}${stderr}` });
    });
  });
}

const realClientKnows = (version: string) => ['3.0.0', '3.1.0', '3.2.0', '3.3.0'].includes(version);

function validate(config: unknown): IgnitionValidation {
  return validateIgnition(config, { allowLegacy: false });
}

function expectWellFormed(issues: ValidationIssue[]): void {
  for (const issue of issues) {
    expect(issue.path).toMatch(/^\$/);
    expect(issue.message.length).toBeGreaterThan(0);
    expect(issue.message.length).toBeLessThan(400);
  }
}

describe('bad-input corpus: Ignition configs', () => {
  it('the rich configs validate cleanly here and, up to 3.3.0, in the real ignition-validate', async () => {
    for (const version of richVersions) {
      const config = richConfig(version);
      expect(validate(config)).toEqual({ version, errors: [], warnings: [] });
      if (realClientKnows(version)) expect(await ignitionValidate(config)).toEqual({ ok: true, output: '' });
    }
  });

  it('a wrong type at any JSON path of a good config is an error naming that path, as the real client agrees', async () => {
    let realChecks = 0;
    await runCorpus(
      'ignition',
      wrongTypeCases,
      async ({ version, mutated, named, wrong }) => {
        const result = validate(mutated);
        expectWellFormed(result.errors);
        const hit = result.errors.filter((issue) => isAtOrUnder(issue.path, named));
        expect(hit, `${named} := ${JSON.stringify(wrong)} gave ${JSON.stringify(result.errors)}`).not.toEqual(
          [],
        );
        if (realClientKnows(version)) {
          realChecks += 1;
          const real = await ignitionValidate(mutated);
          expect(real.ok, `ignition-validate accepted ${named} := ${JSON.stringify(wrong)}`).toBe(false);
        }
      },
      400,
    );
    expect(realChecks).toBeGreaterThan(100);
  });

  it('a field newer than the declared spec version is an error at its path', async () => {
    const newer: { path: Path; since: number }[] = [
      { path: ['ignition', 'config', 'merge', 0, 'httpHeaders'], since: 1 },
      { path: ['ignition', 'config', 'merge', 0, 'compression'], since: 1 },
      { path: ['ignition', 'proxy'], since: 1 },
      { path: ['storage', 'filesystems', 0, 'mountOptions'], since: 1 },
      { path: ['storage', 'disks', 0, 'partitions', 0, 'resize'], since: 2 },
      { path: ['storage', 'luks'], since: 2 },
      { path: ['passwd', 'users', 0, 'shouldExist'], since: 2 },
      { path: ['kernelArguments'], since: 3 },
      { path: ['storage', 'luks', 0, 'discard'], since: 4 },
      { path: ['storage', 'luks', 0, 'openOptions'], since: 4 },
    ];
    await runCorpus(
      'ignition',
      fc.tuple(fc.constantFrom('3.4.0', '3.5.0'), fc.constantFrom('3.0.0', '3.1.0', '3.2.0', '3.3.0')),
      ([from, declared]) => {
        const config = richConfig(from) as { ignition: { version: string } };
        config.ignition.version = declared;
        const minor = Number(declared.split('.')[1]);
        const luksAllowed = minor >= 2;
        const expected = newer
          .filter(
            (field) =>
              field.since > minor && (luksAllowed || field.path[1] !== 'luks' || field.path.length === 2),
          )
          .map((field) => render(field.path));
        const result = validate(config);
        const named = result.errors.filter((issue) =>
          /needs spec version 3\.\d\.0 or later/.test(issue.message),
        );
        expect(named.map((issue) => issue.path).sort()).toEqual(expected.sort());
        expect(result.errors).toEqual(named);
      },
      200,
    );
  });

  it('any JSON value, and junk under every section of a real config, gives issues and never throws', async () => {
    const urlish = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'data:',
        'data:,',
        'data:;base64,',
        'data:text/plain;charset=utf-8;base64,aGk=',
        'data:,%',
        'data:,%zz',
      ),
      fc
        .tuple(
          fc.constantFrom(
            'data:',
            'http://',
            'https://',
            's3://',
            'gs://',
            'tftp://',
            'arn:',
            'file://',
            'HTTP://',
          ),
          fc.string(),
        )
        .map(([a, b]) => a + b),
    );
    const hashish = fc.oneof(
      fc.string(),
      fc.tuple(fc.constantFrom('sha512-', 'sha256-', 'md5-', '-', ''), fc.string()).map(([a, b]) => a + b),
    );
    const resource = fc.record(
      {
        source: urlish,
        compression: fc.oneof(fc.string(), fc.constant('gzip')),
        verification: fc.record({ hash: hashish }),
        httpHeaders: fc.array(fc.record({ name: fc.string(), value: fc.jsonValue() })),
      },
      { requiredKeys: [] },
    );
    const junk = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          ignition: fc.record(
            {
              version: fc.oneof(
                fc.constantFrom(...supportedIgnitionVersions, '2.2.0', '3.6.0', ''),
                fc.string(),
              ),
              config: fc.record({ merge: fc.array(resource), replace: resource }, { requiredKeys: [] }),
            },
            { requiredKeys: [] },
          ),
          storage: fc.oneof(
            fc.jsonValue(),
            fc.record(
              {
                files: fc.array(
                  fc.record(
                    {
                      path: fc.string(),
                      contents: resource,
                      append: fc.array(resource),
                      mode: fc.integer(),
                      overwrite: fc.boolean(),
                    },
                    { requiredKeys: [] },
                  ),
                ),
                disks: fc.array(
                  fc.record(
                    {
                      device: fc.string(),
                      partitions: fc.array(
                        fc.dictionary(
                          fc.constantFrom('number', 'shouldExist', 'label', 'guid', 'typeGuid', 'sizeMiB'),
                          fc.jsonValue(),
                        ),
                      ),
                    },
                    { requiredKeys: [] },
                  ),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
          systemd: fc.oneof(
            fc.jsonValue(),
            fc.record({
              units: fc.array(
                fc.record(
                  { name: fc.string(), dropins: fc.array(fc.record({ name: fc.string() })) },
                  { requiredKeys: [] },
                ),
              ),
            }),
          ),
          passwd: fc.jsonValue(),
          kernelArguments: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    await runCorpus(
      'ignition',
      junk,
      (config) => {
        const result = validate(config);
        expectWellFormed(result.errors);
        expectWellFormed(result.warnings);
      },
      400,
    );
  });

  it('a near-valid config accepted here is accepted by the real client too (3.0.0 to 3.3.0)', async () => {
    const pick = <T>(...values: T[]) => fc.constantFrom(...values);
    const path = fc.oneof(
      pick(
        '/etc/a',
        '/etc/a/',
        '/etc/../etc/b',
        '//etc/c',
        '/',
        'etc/d',
        '/etc/a b',
        '/etc/\u00e9',
        '/etc/a\u0000',
      ),
      fc.string({ maxLength: 12 }).map((s) => `/${s}`),
    );
    const source = fc.oneof(
      pick(
        'data:,x',
        'data:text/plain,x',
        'data:;base64,aGk=',
        'data:;base64,aGk',
        'data:,%ZZ',
        'data:x,y',
        'data:text/plain;charset=utf-8,x',
      ),
      pick(
        'https://example.org/x',
        'http://[::1]:8080/x',
        'https://exa mple.org/',
        'tftp://h/x',
        's3://bucket/key',
        'gs://b/k',
        'HTTPS://Example.org/',
        'http://',
        'https://user:pw@h/x',
      ),
      fc.string({ maxLength: 20 }).map((s) => `data:,${s}`),
    );
    const hash = fc.oneof(
      pick(
        `sha512-${'a'.repeat(128)}`,
        `sha256-${'a'.repeat(64)}`,
        `sha512-${'A'.repeat(128)}`,
        `sha512-${'a'.repeat(127)}`,
        'sha1-abc',
        'sha512-',
      ),
      fc.stringMatching(/^sha(256|512)-[0-9a-fA-F]{60,130}$/),
    );
    const file = fc.record(
      {
        path,
        mode: fc.oneof(fc.integer({ min: -1, max: 0o7777 + 1 }), pick(420, 493, 0o4755)),
        overwrite: fc.boolean(),
        contents: fc.record(
          {
            source,
            verification: fc.record({ hash }),
            compression: pick('', 'gzip', 'xz', 'GZIP'),
            httpHeaders: fc.array(
              fc.record({ name: pick('X-A', 'x a', '', 'Host', 'x-a'), value: pick('1', '') }),
              { maxLength: 2 },
            ),
          },
          { requiredKeys: [] },
        ),
        user: fc.record(
          { id: fc.integer({ min: -2, max: 70000 }), name: pick('core', '', 'root') },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['path'] },
    );
    const unit = fc.record(
      {
        name: fc.oneof(
          pick(
            'a.service',
            'a.SERVICE',
            '.service',
            'a.service.d',
            'a@.service',
            'a@b.timer',
            'a b.service',
            'a.conf',
          ),
          fc.string({ maxLength: 10 }).map((s) => `${s}.service`),
        ),
        enabled: fc.boolean(),
        mask: fc.boolean(),
        contents: pick('[Unit]\n', '', 'garbage', '[Unit'),
        dropins: fc.array(
          fc.record({ name: pick('a.conf', 'a', '.conf', 'a/b.conf'), contents: pick('[Service]\n', '') }),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: ['name'] },
    );
    const filesystem = fc.record(
      {
        device: path,
        format: pick('ext4', 'xfs', 'btrfs', 'vfat', 'swap', 'none', 'zfs', ''),
        path,
        wipeFilesystem: fc.boolean(),
        label: pick('L', ''),
      },
      { requiredKeys: ['device', 'format'] },
    );
    const partition = fc.record(
      {
        number: fc.integer({ min: -1, max: 3 }),
        label: pick('p', ''),
        sizeMiB: fc.integer({ min: -1, max: 10 }),
        shouldExist: fc.boolean(),
        typeGuid: pick('0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'linux', ''),
      },
      { requiredKeys: [] },
    );
    const nearValid = fc.record(
      {
        version: pick('3.0.0', '3.1.0', '3.2.0', '3.3.0'),
        files: fc.array(file, { maxLength: 3 }),
        directories: fc.array(
          fc.record({ path, mode: fc.integer({ min: -1, max: 0o1000 }) }, { requiredKeys: ['path'] }),
          { maxLength: 2 },
        ),
        links: fc.array(
          fc.record(
            { path, target: fc.oneof(path, pick('', 'relative')), hard: fc.boolean() },
            { requiredKeys: ['path', 'target'] },
          ),
          { maxLength: 2 },
        ),
        filesystems: fc.array(filesystem, { maxLength: 2 }),
        disks: fc.array(
          fc.record(
            { device: path, partitions: fc.array(partition, { maxLength: 2 }) },
            { requiredKeys: ['device'] },
          ),
          { maxLength: 2 },
        ),
        units: fc.array(unit, { maxLength: 3 }),
        users: fc.array(
          fc.record(
            { name: pick('core', '', 'a b', 'root'), homeDir: path, uid: fc.integer({ min: -1, max: 5 }) },
            { requiredKeys: ['name'] },
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: ['version'] },
    );
    let accepted = 0;
    let refusedHereOnly = 0;
    await runCorpus(
      'ignition',
      nearValid,
      async ({ version, files, directories, links, filesystems, disks, units, users }) => {
        const config = {
          ignition: { version },
          storage: { files, directories, links, filesystems, disks },
          systemd: { units },
          passwd: { users },
        };
        const ours = validate(config);
        expectWellFormed(ours.errors);
        const real = await ignitionValidate(config);
        if (ours.errors.length === 0) {
          accepted += 1;
          const realErrors = real.output.split('\n').filter((line) => line.startsWith('error'));
          expect(
            realErrors,
            `accepted here, refused by ignition-validate: ${JSON.stringify(config)}`,
          ).toEqual([]);
        } else if (real.ok) {
          refusedHereOnly += 1;
        }
      },
      300,
    );
    process.stdout.write(
      `  near-valid configs: ${accepted} accepted here and by ignition-validate, ${refusedHereOnly} refused here only\n`,
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('generated minimal configs are accepted here and by the real client', async () => {
    const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,15}$/).filter((s) => s !== '.' && s !== '..');
    const absolute = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
    const minimal = fc.record({
      version: fc.constantFrom(...supportedIgnitionVersions),
      files: fc.uniqueArray(
        fc.record({
          path: absolute,
          text: fc.string({ maxLength: 60 }),
          base64: fc.boolean(),
          mode: fc.integer({ min: 0, max: 0o777 }),
        }),
        { selector: (file) => file.path, maxLength: 3 },
      ),
      units: fc.uniqueArray(
        fc.tuple(
          fc.stringMatching(/^[a-z0-9][a-z0-9@_-]{0,15}$/),
          fc.constantFrom('service', 'timer', 'socket', 'path', 'mount'),
        ),
        { selector: ([name, suffix]) => `${name}.${suffix}`, maxLength: 3 },
      ),
      users: fc.uniqueArray(fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/), { maxLength: 3 }),
    });
    let realChecks = 0;
    await runCorpus(
      'ignition',
      minimal,
      async ({ version, files, units, users }) => {
        const config: Record<string, unknown> = { ignition: { version } };
        if (files.length > 0) {
          config.storage = {
            files: files.map((file) => ({
              path: file.path,
              mode: file.mode,
              contents: {
                source: file.base64
                  ? `data:;base64,${Buffer.from(file.text).toString('base64')}`
                  : `data:,${encodeURIComponent(file.text)}`,
              },
            })),
          };
        }
        if (units.length > 0) {
          config.systemd = {
            units: units.map(([name, suffix]) => ({
              name: `${name}.${suffix}`,
              enabled: true,
              contents: '[Unit]\n',
            })),
          };
        }
        if (users.length > 0) config.passwd = { users: users.map((name) => ({ name })) };
        expect(validate(config)).toEqual({ version, errors: [], warnings: [] });
        if (realClientKnows(version)) {
          realChecks += 1;
          const real = await ignitionValidate(config);
          expect(real.ok, real.output).toBe(true);
        }
      },
      300,
    );
    expect(realChecks).toBeGreaterThan(100);
  });
});

describe('bad-input corpus: cloud-configs', () => {
  const yamlPieces = [
    'hostname: node-1',
    'a: [1, 2',
    'b: {x: 1',
    '- item',
    'key: |',
    '  block text',
    '"unterminated',
    'x: "\\u12"',
    'dup: 1',
    'dup: 2',
    '? complex',
    ': value',
    '\t tab: indented',
    '%YAML 1.2',
    '---',
    '...',
    'a: &anchor [1, 2]',
    'b: *anchor',
    '!!binary aGk=',
    'n: !!int x',
    '{',
    ']',
    '#cloud-config',
  ];

  it('any text gives a list of issues naming $.cloudConfig, and never throws', async () => {
    await runCorpus(
      'cloud-config',
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc
          .tuple(
            fc.constantFrom('#cloud-config\n', '#cloud-config\r\n', '#cloud-config \n', '#!/bin/sh\n', ''),
            fc.array(fc.oneof(fc.constantFrom(...yamlPieces), fc.string({ maxLength: 40 })), {
              maxLength: 12,
            }),
          )
          .map(([head, lines]) => head + lines.join('\n')),
      ),
      (text) => {
        const issues = validateCloudConfig(text);
        for (const issue of issues) expect(issue.path).toBe('$.cloudConfig');
        expectWellFormed(issues);
        if ((text.split(/\r?\n/, 1)[0] ?? '').trimEnd() !== '#cloud-config') expect(issues).not.toEqual([]);
      },
      400,
    );
  });

  it('a generated cloud-config mapping is accepted', async () => {
    const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/);
    const scalar = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.constant(null));
    await runCorpus(
      'cloud-config',
      fc.dictionary(
        key,
        fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(key, scalar, { maxKeys: 4 })),
        {
          maxKeys: 6,
        },
      ),
      (document) => {
        const text = `#cloud-config\n${Object.keys(document).length === 0 ? '' : stringify(document)}`;
        expect(validateCloudConfig(text)).toEqual([]);
      },
    );
  });

  // Found by this corpus: both once escaped validateCloudConfig as thrown errors (a 500 through the API).
  it('an alias to a missing anchor is an issue at $.cloudConfig, not a thrown error', () => {
    expect(validateCloudConfig('#cloud-config\nc: *missing\n').map((issue) => issue.path)).toEqual([
      '$.cloudConfig',
    ]);
  });

  it('an alias bomb is an issue at $.cloudConfig, not a thrown error', () => {
    const bomb = [
      '#cloud-config',
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      '',
    ].join('\n');
    const issues = validateCloudConfig(bomb);
    expect(issues.map((issue) => issue.path)).toEqual(['$.cloudConfig']);
  });
});
