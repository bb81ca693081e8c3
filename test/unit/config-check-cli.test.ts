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
  it('prints the effective config of a valid file and exits 0', async () => {
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
    expect(out).toContain(`config: ${file}`);
    expect(out).toMatch(
      /^ {2}stable +https:\/\/stable\.release\.flatcar-linux\.net {2}\(keep the newest 5 per board\)$/m,
    );
    expect(out).toMatch(/^ {2}lts-2024 +https:\/\/mirror\.example\/lts-2024$/m);
    expect(out).toContain('boards: amd64-usr, arm64-usr');
    expect(out).toContain('  version.txt (required)');
    expect(out).toContain('  flatcar_production_pxe.vmlinuz (optional)');
    expect(out).toContain(`  file ${join(projectRoot, 'keys/Flatcar_Image_Signing_Key.asc')}`);
    expect(out).toContain('  trusted F88CFEDEFF29A5B4D9523864E25D9AED0593B34A Flatcar Buildbot');
    expect(out).toMatch(
      /^ {4}signing subkey 52F145DFD00BBDCD928CBB5A32DA80F91EF52974 expires 2027-03-08 \((valid|expired)\)$/m,
    );
    expect(out).toContain('  schedule.everyMinutes = 5');
    expect(out).toContain('  schedule.stallAfterMinutes = 60');
    expect(out).not.toContain('warnings:');
    expect(out.trimEnd().endsWith('config is valid')).toBe(true);

    const json = await cldist(['config', 'check', '--config', file, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { valid: boolean; effective: { boards: string[] } };
    expect(report.valid).toBe(true);
    expect(report.effective.boards).toEqual(['amd64-usr', 'arm64-usr']);
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
