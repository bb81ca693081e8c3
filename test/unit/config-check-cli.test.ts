import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cldist(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(projectRoot, 'bin/cldist.js'), ...args],
      { encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let dir: string;
const write = async (name: string, value: unknown) => {
  const path = join(dir, name);
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cldist-config-check-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cldist config check', () => {
  it('prints each source of the example config (channels, boards per channel, artifacts, keys) and exits 0', async () => {
    const file = join(projectRoot, 'examples/coreos-and-flatcar.json');
    const run = await cldist(['config', 'check', '--config', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toContain(`config: ${file}`);
    expect(out).toContain('  coreos  (COREOS_VERSION_ID, mirrored under coreos/)');
    expect(out).toContain('  flatcar  (FLATCAR_VERSION_ID, mirrored under flatcar/)');
    expect(out).toMatch(
      /^ {8}amd64-usr {2}https:\/\/stable\.release\.core-os\.net\/amd64-usr\/current\/version\.txt$/m,
    );
    expect(out).toContain('      stable: amd64-usr, arm64-usr\n');
    expect(out).toMatch(
      /^ {8}arm64-usr {2}https:\/\/lts\.release\.flatcar-linux\.net\/arm64-usr\/current\/version\.txt$/m,
    );
    expect(out).toContain(
      '        amd64-usr  https://lts.release.flatcar-linux.net/amd64-usr/current-2024/version.txt',
    );
    expect(out).toContain('      coreos_production_openstack_image.img.bz2 (required)');
    expect(out).toContain('      flatcar_production_image.bin.bz2 (required)');
    expect(out).toMatch(
      /^ {6}F88CFEDEFF29A5B4D9523864E25D9AED0593B34A Flatcar Buildbot .*: signing subkey 52F145DFD00BBDCD928CBB5A32DA80F91EF52974 expires 2027-03-08 \((valid|expired)\)$/m,
    );
    expect(out).toMatch(
      /^ {6}04127D0BFABEC8871FFB2CCE50E0885593D2DCB4 CoreOS Buildbot .*: signing subkey \w+ expires 2021-06-01 \(expired\)$/m,
    );
    expect(out).toContain(`  file ${join(projectRoot, 'keys/CoreOS_Image_Signing_Key.asc')}`);
    expect(out.trimEnd().endsWith('config is valid')).toBe(true);
  });

  it('reads the old top-level lists, prints them as one source and warns with the new shape', async () => {
    const file = await write('good.json', {
      channels: [
        { name: 'stable', keepReleases: 5 },
        { name: 'lts-2024', baseUrl: 'https://mirror.example/{channel}/' },
      ],
      boards: ['amd64-usr', 'arm64-usr'],
      artifacts: [{ name: 'version.txt' }, { name: 'flatcar_production_pxe.vmlinuz', required: false }],
      keyring: {
        files: ['keys/Flatcar_Image_Signing_Key.asc'],
        trustedFingerprints: ['F88CFEDEFF29A5B4D9523864E25D9AED0593B34A'],
      },
      schedule: { everyMinutes: 5 },
    });
    const run = await cldist(['config', 'check', '--config', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toContain('  flatcar  (FLATCAR_VERSION_ID, mirrored under the mirror root)');
    expect(out).toContain('      lts-2024: amd64-usr, arm64-usr');
    expect(out).toContain('        arm64-usr  https://mirror.example/lts/arm64-usr/current-2024/version.txt');
    expect(out).toContain('      version.txt (required)');
    expect(out).toContain('      flatcar_production_pxe.vmlinuz (optional)');
    expect(out).toContain('      stable: amd64-usr, arm64-usr  (keep the newest 5 per board)');
    expect(out).toContain('  trusted F88CFEDEFF29A5B4D9523864E25D9AED0593B34A Flatcar Buildbot');
    expect(out).toMatch(
      /^ {4}signing subkey 52F145DFD00BBDCD928CBB5A32DA80F91EF52974 expires 2027-03-08 \((valid|expired)\)$/m,
    );
    expect(out).toContain('  schedule.everyMinutes = 5');
    expect(out).toContain('  schedule.stallAfterMinutes = 60');
    expect(out).toMatch(
      /^warnings:\n {2}channels, boards, artifacts: the top-level .* are read as one source; write it as "sources": \[\{"name":"flatcar"/m,
    );
    expect(out.trimEnd().endsWith('config is valid')).toBe(true);

    const json = await cldist(['config', 'check', '--config', file, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as {
      valid: boolean;
      effective: { sources: Array<{ channels: Array<{ boards: string[] }> }> };
    };
    expect(report.valid).toBe(true);
    expect(report.effective.sources[0]?.channels[1]?.boards).toEqual(['amd64-usr', 'arm64-usr']);
  });

  it('names each typo with its nearest valid name and exits 2', async () => {
    const file = await write('typos.json', {
      channels: [{ name: 'stabel' }, { name: 'beta', baseUrl: 'https://x.example/{channel}', mirror: true }],
      boards: ['amd64-us', 'arm64-usr'],
      artifacts: [{ name: 'version.txt', requird: false }],
      keyring: { trustedFingerprint: ['F88CFEDEFF29A5B4D9523864E25D9AED0593B34A'] },
      schedul: { everyMinutes: 5 },
    });
    const run = await cldist(['config', 'check', '--config', file]);
    expect(run.code).toBe(2);
    expect(
      run.stderr
        .split('\n')
        .filter((line) => line !== '')
        .sort(),
    ).toEqual(
      [
        `cldist: config file ${file} is invalid:`,
        '  boards.0: unknown board "amd64-us"; did you mean `amd64-usr`?',
        '  channels.0.name: unknown channel "stabel"; did you mean `stable`?',
        '  channels.1.mirror: unknown key',
        '  artifacts.0.requird: unknown key; did you mean `required`?',
        '  keyring.trustedFingerprint: unknown key; did you mean `trustedFingerprints`?',
        '  schedul: unknown key; did you mean `schedule`?',
      ].sort(),
    );
    expect(run.stdout).not.toContain('config is valid');

    const json = await cldist(['config', 'check', '--config', file, '--json']);
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout) as {
      valid: boolean;
      errors: Array<{ path: string; suggestion?: string }>;
    };
    expect(report.valid).toBe(false);
    expect(report.errors.find((e) => e.path === 'boards.0')?.suggestion).toBe('amd64-usr');
  });

  it('names each typo in a sources config with its nearest valid name and exits 2', async () => {
    const file = await write('typos-sources.json', {
      sources: [
        {
          name: 'coreos',
          versionkey: 'COREOS_VERSION_ID',
          channels: [{ name: 'stabel', boards: ['amd64-usr', 'amd46-usr'] }],
        },
        { name: 'flatcar', chanels: [], artifacts: [{ name: 'version.txt', requird: true }] },
        { name: 'lts', channels: [{ name: 'curent-2024', bords: ['arm64-usr'] }] },
      ],
    });
    const run = await cldist(['config', 'check', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n').slice(1).sort()).toEqual(
      [
        '  sources.0.versionkey: unknown key; did you mean `versionKey`?',
        '  sources.0.channels.0.name: unknown channel "stabel"; did you mean `stable`?',
        '  sources.0.channels.0.boards.1: unknown board "amd46-usr"; did you mean `amd64-usr`?',
        '  sources.1.chanels: unknown key; did you mean `channels`?',
        '  sources.1.artifacts.0.requird: unknown key; did you mean `required`?',
        '  sources.2.channels.0.name: unknown channel "curent-2024"; did you mean `current-2024`?',
        '  sources.2.channels.0.bords: unknown key; did you mean `boards`?',
      ].sort(),
    );
  });

  it('warns of a well-formed unknown channel but exits 0', async () => {
    const file = await write('unknown.json', { channels: [{ name: 'edge' }] });
    const run = await cldist(['config', 'check', '--config', file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'channels.0.name: "edge" is not a channel Flatcar publishes (fine if your origin does); did you mean `beta`?',
    );
  });

  it('exits 2 on a file that is missing or not JSON, saying what to do', async () => {
    const missing = await cldist(['config', 'check', '--config', join(dir, 'absent.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('pass an existing JSON file with --config');
    const broken = await cldist(['config', 'check', '--config', await write('broken.json', '{"boards": [')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('is not valid JSON');
  });

  it('serve names the same unknown key with the same suggestion', async () => {
    const file = await write('serve.json', { schedul: { everyMinutes: 5 } });
    const run = await cldist(['serve', '--config', file, '--data-dir', join(dir, 'data'), '--port', '0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('schedul: unknown key; did you mean `schedule`?');
  });
});
