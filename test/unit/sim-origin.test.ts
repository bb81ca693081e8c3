import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  faults,
  type PublishedRelease,
  type SimOrigin,
  startSimOrigin,
} from '../../local/sim-origin/sim-origin.ts';
import { parseDigests } from '../../shared/release/digests.ts';
import { parseVersionFile } from '../../shared/release/version-file.ts';

const run = promisify(execFile);
const folder = '/alpha/amd64-usr/4081.0.0';
const imageSize = 2_500_000;
let origin: SimOrigin;
let release: PublishedRelease;
let gnupgHome: string;

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${origin.url}${path}`, { headers });
  return { response, body: Buffer.from(await response.arrayBuffer()) };
}

const sha512 = (data: Uint8Array) => createHash('sha512').update(data).digest('hex');

/** Real gpg against a throw-away home that holds only the sim origin's public key. */
async function gpgVerify(data: Uint8Array, signature: Uint8Array): Promise<{ ok: boolean; status: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sim-verify-'));
  try {
    await writeFile(join(dir, 'data'), data);
    await writeFile(join(dir, 'data.sig'), signature);
    const { stdout } = await run(
      'gpg',
      ['--batch', '--no-tty', '--status-fd', '1', '--verify', join(dir, 'data.sig'), join(dir, 'data')],
      { env: { ...process.env, GNUPGHOME: gnupgHome } },
    );
    return { ok: true, status: stdout };
  } catch (error) {
    const stdout = (error as { stdout?: string }).stdout ?? '';
    return { ok: false, status: stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  origin = await startSimOrigin();
  release = await origin.publishRelease({
    channel: 'alpha',
    board: 'amd64-usr',
    version: '4081.0.0',
    artifacts: [
      { name: 'flatcar_production_image.bin.bz2', size: imageSize },
      { name: 'notes.txt', content: 'hello\n' },
    ],
  });
  gnupgHome = await mkdtemp(join(tmpdir(), 'sim-gnupg-'));
  await writeFile(join(gnupgHome, 'key.asc'), origin.publicKeyArmored);
  await run('gpg', ['--batch', '--no-tty', '--quiet', '--import', join(gnupgHome, 'key.asc')], {
    env: { ...process.env, GNUPGHOME: gnupgHome },
  });
});

afterAll(async () => {
  await origin.close();
  await rm(gnupgHome, { recursive: true, force: true });
});

beforeEach(() => {
  origin.clearFaults();
  origin.requests.length = 0;
});

describe('sim origin signatures', () => {
  it.each([
    'flatcar_production_image.bin.bz2',
    'notes.txt',
    'version.txt',
    'flatcar_production_image.bin.bz2.DIGESTS',
  ])('are accepted by gpg for %s: SHA-512, by the signing subkey of the primary key', async (name) => {
    const { body } = await get(`${folder}/${name}`);
    const { body: signature } = await get(`${folder}/${name}.sig`);
    expect(sha512(body)).toBe(release.sha512[name]);
    const result = await gpgVerify(body, signature);
    expect(result.ok).toBe(true);
    const validsig = result.status.split('\n').find((line) => line.startsWith('[GNUPG:] VALIDSIG '));
    const fields = validsig?.split(' ') ?? [];
    expect(fields[2]).toBe(origin.signingKeyFingerprint);
    expect(fields[9]).toBe('10');
    expect(fields[11]).toBe(origin.primaryFingerprint);
    expect(origin.signingKeyFingerprint).not.toBe(origin.primaryFingerprint);
  });

  it('can sign with RSA-4096 keys like the real ones, accepted by gpg', async () => {
    const rsa = await startSimOrigin({ keyType: 'rsa4096' });
    const home = await mkdtemp(join(tmpdir(), 'sim-gnupg-rsa-'));
    try {
      await rsa.publishRelease({ channel: 'lts', board: 'amd64-usr', version: '3033.3.18', artifacts: [] });
      await writeFile(join(home, 'key.asc'), rsa.publicKeyArmored);
      const env = { ...process.env, GNUPGHOME: home };
      await run('gpg', ['--batch', '--no-tty', '--quiet', '--import', join(home, 'key.asc')], { env });
      const path = '/lts/amd64-usr/3033.3.18/version.txt';
      const data = Buffer.from(await (await fetch(`${rsa.url}${path}`)).arrayBuffer());
      const signature = Buffer.from(await (await fetch(`${rsa.url}${path}.sig`)).arrayBuffer());
      await writeFile(join(home, 'data'), data);
      await writeFile(join(home, 'data.sig'), signature);
      const { stdout } = await run(
        'gpg',
        ['--batch', '--no-tty', '--status-fd', '1', '--verify', join(home, 'data.sig'), join(home, 'data')],
        { env },
      );
      const fields =
        stdout
          .split('\n')
          .find((line) => line.startsWith('[GNUPG:] VALIDSIG '))
          ?.split(' ') ?? [];
      expect([fields[2], fields[8], fields[9], fields[11]]).toEqual([
        rsa.signingKeyFingerprint,
        '1',
        '10',
        rsa.primaryFingerprint,
      ]);
    } finally {
      await rsa.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('serves a tampered byte that gpg then refuses, with the signature unchanged', async () => {
    origin.inject(/image\.bin\.bz2$/, faults.tamper(1_234_567));
    const { body: tampered } = await get(`${folder}/flatcar_production_image.bin.bz2`);
    const { body: good } = await get(`${folder}/flatcar_production_image.bin.bz2`);
    const { body: signature } = await get(`${folder}/flatcar_production_image.bin.bz2.sig`);
    expect(tampered.length).toBe(good.length);
    const differing = [...tampered.keys()].filter((index) => tampered[index] !== good[index]);
    expect(differing).toEqual([1_234_567]);
    const result = await gpgVerify(tampered, signature);
    expect(result.ok).toBe(false);
    expect(result.status).toContain('[GNUPG:] BADSIG');
    expect((await gpgVerify(good, signature)).ok).toBe(true);
  });

  it('writes DIGESTS files with MD5, SHA1 and SHA512 sections, as upstream does', async () => {
    const { body } = await get(`${folder}/flatcar_production_image.bin.bz2.DIGESTS`);
    const text = body.toString('utf8');
    expect(text).toMatch(/^# MD5 HASH\n[0-9a-f]{32} {2}flatcar_production_image\.bin\.bz2\n# SHA1 HASH\n/);
    expect(parseDigests(text).get('flatcar_production_image.bin.bz2')).toBe(
      release.sha512['flatcar_production_image.bin.bz2'],
    );
    expect((await get(`${folder}/flatcar_production_image.bin.bz2.DIGESTS.sig`)).response.status).toBe(200);
    expect((await get(`${folder}/flatcar_production_image.bin.bz2.DIGESTS.DIGESTS`)).response.status).toBe(
      404,
    );
  });
});

describe('sim origin content', () => {
  it('generates the same bytes for the same name and version on any origin, other bytes otherwise', async () => {
    const other = await startSimOrigin();
    try {
      const published = await other.publishRelease({
        channel: 'beta',
        board: 'amd64-usr',
        version: '4081.0.0',
        artifacts: [
          { name: 'flatcar_production_image.bin.bz2', size: imageSize },
          { name: 'other.img', size: imageSize },
        ],
        prefix: 'COREOS',
      });
      expect(published.sha512['flatcar_production_image.bin.bz2']).toBe(
        release.sha512['flatcar_production_image.bin.bz2'],
      );
      expect(published.sha512['other.img']).not.toBe(release.sha512['flatcar_production_image.bin.bz2']);
      expect(published.size['other.img']).toBe(imageSize);
      const response = await fetch(`${other.url}/beta/amd64-usr/current/version.txt`);
      expect(parseVersionFile(new Uint8Array(await response.arrayBuffer()))).toMatchObject({
        prefix: 'COREOS',
        version: '4081.0.0',
      });
    } finally {
      await other.close();
    }
  });

  it('serves a version.txt the poller accepts, under current/ and in the versioned folder', async () => {
    const { body, response } = await get('/alpha/amd64-usr/current/version.txt');
    expect(response.headers.get('etag')).toMatch(/^"/);
    const parsed = parseVersionFile(body);
    expect(parsed).toMatchObject({ prefix: 'FLATCAR', version: '4081.0.0' });
    expect(parsed.fields.FLATCAR_BUILD_ID).toMatch(/^\d{4}-\d\d-\d\d-\d{4}$/);
    expect((await get(`${folder}/version.txt`)).body).toEqual(body);
  });

  it('serves any byte range of a generated artifact, consistent with the whole', async () => {
    const { body: whole } = await get(`${folder}/flatcar_production_image.bin.bz2`);
    for (const [first, last] of [
      [0, 0],
      [15, 16],
      [1_000_003, 1_500_000],
      [imageSize - 7, imageSize - 1],
    ] as const) {
      const { response, body } = await get(`${folder}/flatcar_production_image.bin.bz2`, {
        range: `bytes=${first}-${last}`,
      });
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe(`bytes ${first}-${last}/${imageSize}`);
      expect(body.equals(whole.subarray(first, last + 1))).toBe(true);
    }
    const open = await get(`${folder}/flatcar_production_image.bin.bz2`, { range: 'bytes=2400000-' });
    expect(open.body.equals(whole.subarray(2_400_000))).toBe(true);
  });

  it('honours If-Range: a stale validator gets the whole object', async () => {
    const { response: head } = await get(`${folder}/notes.txt`);
    const etag = head.headers.get('etag') ?? '';
    const lastModified = head.headers.get('last-modified') ?? '';
    const matching = await get(`${folder}/notes.txt`, { range: 'bytes=2-', 'if-range': etag });
    expect([matching.response.status, matching.body.toString()]).toEqual([206, 'llo\n']);
    const byDate = await get(`${folder}/notes.txt`, { range: 'bytes=2-', 'if-range': lastModified });
    expect(byDate.response.status).toBe(206);
    const stale = await get(`${folder}/notes.txt`, { range: 'bytes=2-', 'if-range': '"stale"' });
    expect([stale.response.status, stale.body.toString()]).toEqual([200, 'hello\n']);
  });

  it('answers 416 for a range past the end', async () => {
    const { response } = await get(`${folder}/notes.txt`, { range: 'bytes=6-' });
    expect(response.status).toBe(416);
    expect(response.headers.get('content-range')).toBe('bytes */6');
  });

  it('answers HEAD with the length and validators only', async () => {
    const response = await fetch(`${origin.url}${folder}/flatcar_production_image.bin.bz2`, {
      method: 'HEAD',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(imageSize));
    expect(response.headers.get('accept-ranges')).toBe('bytes');
    expect(origin.requests[0]).toMatchObject({ method: 'HEAD', bytesSent: 0 });
  });

  it('moves current forwards and backwards, with 304 only while it stays put', async () => {
    const first = await get('/alpha/amd64-usr/current/version.txt');
    const etag = first.response.headers.get('etag') ?? '';
    expect(
      (await get('/alpha/amd64-usr/current/version.txt', { 'if-none-match': etag })).response.status,
    ).toBe(304);

    await origin.publishRelease({ channel: 'alpha', board: 'amd64-usr', version: '4082.0.0', artifacts: [] });
    const moved = await get('/alpha/amd64-usr/current/version.txt', { 'if-none-match': etag });
    expect(moved.response.status).toBe(200);
    expect(parseVersionFile(moved.body).version).toBe('4082.0.0');

    origin.setCurrent('alpha', 'amd64-usr', '4081.0.0');
    const back = await get('/alpha/amd64-usr/current/version.txt', {
      'if-modified-since': moved.response.headers.get('last-modified') ?? '',
    });
    expect(back.response.status).toBe(200);
    expect(parseVersionFile(back.body).version).toBe('4081.0.0');
  });

  it('publishes without moving current when asked', async () => {
    await origin.publishRelease({
      channel: 'alpha',
      board: 'amd64-usr',
      version: '4090.0.0',
      artifacts: [],
      makeCurrent: false,
    });
    const { body } = await get('/alpha/amd64-usr/current/version.txt');
    expect(parseVersionFile(body).version).toBe('4081.0.0');
    expect(parseVersionFile((await get('/alpha/amd64-usr/4090.0.0/version.txt')).body).version).toBe(
      '4090.0.0',
    );
  });

  it('replaces and removes single files', async () => {
    origin.putFile(`${folder}/notes.txt.sig`, 'not a signature');
    expect((await get(`${folder}/notes.txt.sig`)).body.toString()).toBe('not a signature');
    origin.removeFile(`${folder}/notes.txt`);
    expect((await get(`${folder}/notes.txt`)).response.status).toBe(404);
  });

  it('links one file to another, as the pxe.vmlinuz symlink upstream', async () => {
    origin.linkFile(`${folder}/pxe.img`, `${folder}/flatcar_production_image.bin.bz2`);
    const linked = await get(`${folder}/pxe.img`, { range: 'bytes=0-99' });
    const target = await get(`${folder}/flatcar_production_image.bin.bz2`, { range: 'bytes=0-99' });
    expect(linked.body.equals(target.body)).toBe(true);
    expect(linked.response.headers.get('etag')).toBe(target.response.headers.get('etag'));
    expect(() => origin.linkFile(`${folder}/x`, `${folder}/nothing`)).toThrow(/does not exist/);
  });

  it('refuses names that would leave the release folder', async () => {
    await expect(
      origin.publishRelease({ channel: 'alpha', board: 'amd64-usr', version: '1/../2', artifacts: [] }),
    ).rejects.toThrow(/version "1\/..\/2" is not a plain name/);
    await expect(
      origin.publishRelease({
        channel: 'alpha',
        board: 'amd64-usr',
        version: '1.0.0',
        artifacts: [{ name: '../x', size: 1 }],
      }),
    ).rejects.toThrow(/artifact "..\/x"/);
  });
});

describe('sim origin faults', () => {
  it('applies a fault the given number of times, after letting some requests through', async () => {
    const handle = origin.inject('/version\\.txt$', faults.status(503), { times: 2, after: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await get(`${folder}/version.txt`)).response.status);
    }
    expect(statuses).toEqual([200, 503, 503, 200]);
    expect([handle.applied, handle.remaining]).toEqual([2, 0]);
    expect(origin.requests.map((request) => request.faults)).toEqual([[], ['status'], ['status'], []]);
  });

  it('drops the connection after exactly the given number of body bytes', async () => {
    origin.inject(/image\.bin\.bz2$/, faults.dropAfter(300_000));
    await expect(get(`${folder}/flatcar_production_image.bin.bz2`)).rejects.toThrow();
    expect(origin.requests[0]).toMatchObject({ status: 200, bytesSent: 300_000, aborted: true });
    expect((await get(`${folder}/flatcar_production_image.bin.bz2`)).body.length).toBe(imageSize);
  });

  it('changes the validators but not the bytes on changeEtag', async () => {
    const before = await get(`${folder}/version.txt`);
    origin.inject(/4081\.0\.0\/version\.txt$/, faults.changeEtag());
    const after = await get(`${folder}/version.txt`);
    expect(after.response.headers.get('etag')).not.toBe(before.response.headers.get('etag'));
    expect(after.response.headers.get('last-modified')).not.toBe(
      before.response.headers.get('last-modified'),
    );
    expect(after.body).toEqual(before.body);
  });

  it('redirects, and answers 405 to anything but GET and HEAD', async () => {
    origin.inject(/pxe\.vmlinuz$/, faults.redirect('notes.txt'));
    const response = await fetch(`${origin.url}${folder}/pxe.vmlinuz`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('notes.txt');
    expect((await fetch(`${origin.url}${folder}/version.txt`, { method: 'PUT', body: 'x' })).status).toBe(
      405,
    );
  });
});
