import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../shared/api/node-server.ts';
import { runCldist } from '../support/cli.ts';
import { type CliApi, startCliApi } from '../support/instance-api.ts';
import { ed25519PublicKey } from '../support/ssh-keys.ts';

const cldist = (args: string[]) => runCldist(args, { timeoutMs: 30_000 });

describe('cldist instances (CLI against a running API)', () => {
  let api: CliApi;
  let dir: string;
  let server: RunningServer;
  let connection: string[];

  beforeAll(async () => {
    api = await startCliApi('cldist-cli-');
    ({ dir, server, connection } = api);
    await writeFile(join(dir, 'good.ign'), JSON.stringify({ ignition: { version: '3.4.0' } }));
    await writeFile(
      join(dir, 'bad.ign'),
      JSON.stringify({ ignition: { version: '3.4.0' }, storage: { files: [{ path: 'x' }] } }),
    );
    await writeFile(join(dir, 'old.yaml'), '#cloud-config\nhostname: old\n');
    await writeFile(
      join(dir, 'typo.ign'),
      JSON.stringify({
        ignition: { version: '3.4.0' },
        passwd: { users: [{ name: 'core', sshAuthorisedKeys: [] }] },
      }),
    );
  });

  afterAll(async () => {
    await api?.close();
  });

  it('puts an Ignition config with the stored admin token and prints the token and URL', async () => {
    const run = await cldist([
      'instances',
      'put',
      'cli-1',
      '--ignition',
      join(dir, 'good.ign'),
      '--one-time',
      ...connection,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const token = /^token: (\S+)$/m.exec(run.stdout)?.[1] ?? '';
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(run.stdout).toContain(`ignition URL: ${server.url}/v1/instances/cli-1/ignition?token=${token}`);
    const served = await fetch(`${server.url}/v1/instances/cli-1/ignition?token=${token}`);
    expect(await served.json()).toEqual({ ignition: { version: '3.4.0' } });

    const shown = await cldist(['instances', 'get', 'cli-1', ...connection]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id: 'cli-1',
      oneTime: true,
      audit: [{ outcome: 'served' }],
    });
    expect(shown.stdout).not.toContain(token);

    const deleted = await cldist(['instances', 'delete', 'cli-1', ...connection]);
    expect(deleted).toMatchObject({ code: 0, stdout: 'deleted cli-1\n' });
    expect((await cldist(['instances', 'get', 'cli-1', ...connection])).code).not.toBe(0);
  });

  it('sends the instance parameters, and says who holds a conflicting address', async () => {
    await writeFile(
      join(dir, 'keys.pub'),
      `# alice\n${ed25519PublicKey('alice')}\n\n${ed25519PublicKey('bob')}\n`,
    );
    const params = ['--ip', '10.7.0.1', '--ip', 'FE80::7', '--public-ip', '203.0.113.7', '--hostname', 'h7'];
    const more = [
      '--ssh-key',
      join(dir, 'keys.pub'),
      '--instance-type',
      't1',
      '--zone',
      'z1',
      '--attribute',
      'a=b=c',
    ];
    const put = await cldist([
      'instances',
      'put',
      'params-1',
      '--ignition',
      join(dir, 'good.ign'),
      ...params,
      ...more,
      ...connection,
    ]);
    expect(put.code, put.stderr).toBe(0);
    const shown = JSON.parse((await cldist(['instances', 'get', 'params-1', ...connection])).stdout);
    expect(shown.params).toMatchObject({
      ips: ['10.7.0.1', 'fe80::7'],
      publicIp: '203.0.113.7',
      hostname: 'h7',
      instanceType: 't1',
      zone: 'z1',
      attributes: { a: 'b=c' },
    });
    expect(shown.params.sshKeys).toHaveLength(2);
    const conflict = await cldist([
      'instances',
      'put',
      'params-2',
      '--ignition',
      join(dir, 'good.ign'),
      '--ip',
      '10.7.0.1',
      ...connection,
    ]);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toMatch(/409: address 10\.7\.0\.1 belongs to instance "params-1"/);
    const badKey = await cldist([
      'instances',
      'put',
      'params-3',
      '--ignition',
      join(dir, 'good.ign'),
      '--ssh-key',
      join(dir, 'good.ign'),
      ...connection,
    ]);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/\$\.sshKeys\[0\]: not an OpenSSH public key/);
    const badAttribute = await cldist([
      'instances',
      'put',
      'params-3',
      '--ignition',
      join(dir, 'good.ign'),
      '--attribute',
      'novalue',
      ...connection,
    ]);
    expect(badAttribute.code).toBe(2);
    expect(badAttribute.stderr).toMatch(/--attribute novalue: expected KEY=VALUE/);
  });

  it('puts a cloud-config and prints its URL', async () => {
    const run = await cldist([
      'instances',
      'put',
      'cli-old',
      '--cloud-config',
      join(dir, 'old.yaml'),
      ...connection,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^cloud-config URL: .*\/v1\/instances\/cli-old\/cloud-config\?token=/m);
  });

  it('shows each invalid field and fails', async () => {
    const run = await cldist([
      'instances',
      'put',
      'cli-2',
      '--ignition',
      join(dir, 'bad.ign'),
      ...connection,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('$.storage.files[0].path: expected an absolute path');
  });

  it('warns about a misspelt key, and refuses it with --strict naming the path and the nearest key', async () => {
    const typo = join(dir, 'typo.ign');
    const warned = await cldist(['instances', 'put', 'cli-typo', '--ignition', typo, ...connection]);
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stderr).toContain(
      'warning: $.passwd.users[0].sshAuthorisedKeys: unknown key, Ignition ignores it; did you mean `sshAuthorizedKeys`?',
    );
    const strict = await cldist([
      'instances',
      'put',
      'cli-typo-2',
      '--ignition',
      typo,
      '--strict',
      ...connection,
    ]);
    expect(strict.code).toBe(2);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toContain('?strict=true failed with 400');
    expect(strict.stderr).toContain(
      '$.passwd.users[0].sshAuthorisedKeys: unknown key, refused because unknown Ignition keys are rejected; did you mean `sshAuthorizedKeys`?',
    );
    expect((await cldist(['instances', 'get', 'cli-typo-2', ...connection])).code).toBe(2);
  });

  it('refuses an --api that is not an http(s) URL as a usage error, before sending anything', async () => {
    for (const api of ['notaurl', 'ftp://127.0.0.1/']) {
      const run = await cldist(['instances', 'get', 'x', '--api', api, '--data-dir', join(dir, 'data')]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/option '--api <url>' argument '.*' is invalid\. expected an http\(s\) URL/);
    }
  });

  it('fails clearly without an admin token or with a wrong one', async () => {
    const noToken = await cldist([
      'instances',
      'get',
      'x',
      '--api',
      server.url,
      '--data-dir',
      join(dir, 'nowhere'),
    ]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no admin token at .*nowhere\/admin-token/);
    const wrong = await cldist(['instances', 'get', 'x', '--api', server.url, '--token', 'wrong']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/failed with 401/);
  });
});
