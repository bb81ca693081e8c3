import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';
import {
  fingerprint,
  makeKey,
  publicArmor,
  randomBytes,
  signDetached,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cldist(args: string[], stdin?: Uint8Array): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(projectRoot, 'bin/cldist.js'), ...args],
      { encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}

let dir: string;
let key: PrivateKey;
let file: string;
let keyFile: string;
const data = randomBytes(300_000, 9);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cldist-verify-cli-'));
  key = await makeKey({ name: 'CLI', date: new Date(Date.now() - 86_400_000) });
  file = join(dir, 'flatcar_production_pxe.vmlinuz');
  keyFile = join(dir, 'key.asc');
  await writeFile(file, data);
  await writeFile(keyFile, publicArmor(key));
  await writeFile(
    `${file}.sig`,
    await signDetached(subkeyPacket(key, 0), data, { date: new Date(Date.now() - 60_000) }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cldist verify', () => {
  it('reports a good signature, reading <file>.sig by default, and exits 0', async () => {
    const run = await cldist(['verify', file, '--keyring', keyFile, '--trust', fingerprint(key)]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^good signature from ${fingerprint(key)} \\(subkey ${fingerprint(key.subkeys[0] ?? key)}, made \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)\\n$`,
      ),
    );
  });

  it('trusts the primary keys of --keyring files when no --trust narrows them, like sqv', async () => {
    const run = await cldist(['verify', file, '--keyring', keyFile]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`good signature from ${fingerprint(key)}`);
    const narrowed = await cldist([
      'verify',
      file,
      '--keyring',
      keyFile,
      '--trust',
      'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A',
    ]);
    expect(narrowed.code).toBe(2);
  });

  it('reads the data from standard input with -, and needs --signature then', async () => {
    const good = await cldist(
      ['verify', '-', '--signature', `${file}.sig`, '--keyring', keyFile],
      await readFile(file),
    );
    expect(good.code).toBe(0);
    const bad = await cldist(
      ['verify', '-', '--signature', `${file}.sig`, '--keyring', keyFile],
      new Uint8Array([1, 2, 3]),
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad signature (tampered)');
    const usage = await cldist(['verify', '-', '--keyring', keyFile]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('needs --signature');
  });

  it('exits 2 on a usage error', async () => {
    const run = await cldist(['verify', file, '--no-such-option']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown option '--no-such-option'");
  });

  it('prints JSON with --json and throughput and peak RSS with --stats', async () => {
    const run = await cldist([
      'verify',
      file,
      '--keyring',
      keyFile,
      '--trust',
      fingerprint(key),
      '--json',
      '--stats',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      file,
      signature: `${file}.sig`,
      good: true,
      primaryKeyFingerprint: fingerprint(key),
      hashAlgorithm: 'SHA512',
      bytes: data.byteLength,
    });
    expect(run.stderr).toMatch(/^verified 300000 bytes in [\d.]+ s: [\d.]+ MB\/s, peak RSS [\d.]+ MiB\n$/);
  });

  it('exits 1 naming the reason when the file was tampered with', async () => {
    const tampered = join(dir, 'tampered.bin');
    const bytes = data.slice();
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    await writeFile(tampered, bytes);
    const run = await cldist([
      'verify',
      tampered,
      '--signature',
      `${file}.sig`,
      '--keyring',
      keyFile,
      '--trust',
      fingerprint(key),
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^cldist: bad signature \(tampered\): /);
  });

  it('uses the bundled upstream keys by default, which did not make this signature', async () => {
    const run = await cldist(['verify', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('bad signature (unknown-key)');
  });

  it('refuses a keyring file that holds no key, naming it', async () => {
    const run = await cldist(['verify', file, '--keyring', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`keyring file ${file}`);
  });

  it('names a missing data file first, before its signature', async () => {
    const missing = join(dir, 'missing.img');
    const run = await cldist(['verify', missing]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^cldist: cannot read file ${missing}: ENOENT`));
    expect(run.stderr).not.toContain('.sig');
  });

  it('calls a random .sig garbage-signature in a sentence, without the parser internals', async () => {
    const random = join(dir, 'random.bin');
    await writeFile(random, data);
    await writeFile(`${random}.sig`, randomBytes(512, 77));
    const run = await cldist(['verify', random, '--keyring', keyFile]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'cldist: bad signature (garbage-signature): the signature file is not an OpenPGP signature, binary or ' +
        'ASCII-armored: download the .sig again, or check that it belongs to this file\n',
    );
  });

  it('names a missing signature file', async () => {
    await writeFile(join(dir, 'nothing-here'), data);
    const run = await cldist(['verify', join(dir, 'nothing-here')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot read signature file ${join(dir, 'nothing-here')}.sig`);
  });
});
