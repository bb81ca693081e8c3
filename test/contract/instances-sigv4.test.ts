import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig, projectRoot } from '../../shared/config.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { runCommand } from '../support/cli.ts';
import { freshInstanceRepository } from '../support/instance-api.ts';
import { type SigV4Gateway, startSigV4Gateway } from '../support/sigv4-gateway.ts';

const awsKeys = { accessKeyId: 'AKIDCLDISTTEST', secretAccessKey: 'cldist-test-secret' };
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: awsKeys.accessKeyId,
  AWS_SECRET_ACCESS_KEY: awsKeys.secretAccessKey,
  AWS_REGION: 'eu-west-1',
};

const run = (command: string, args: string[]) => runCommand(command, args, { env });

/** What docs/aws.md shows, against a loopback gateway that checks SigV4 with the AWS SDK's own signer. */
describe('the admin path behind a SigV4-checking gateway: curl as documented, and the CLI', () => {
  let dir: string;
  let gateway: SigV4Gateway;
  let instances: InstanceRepository;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-sigv4-'));
    instances = await freshInstanceRepository();
    const app = createApiApp(
      {
        instances,
        bodies: createLocalStore(join(dir, 'configs')),
        clock: () => new Date(),
        adminAuth: { kind: 'iam' },
      },
      parseConfig({}),
    );
    gateway = await startSigV4Gateway(app, awsKeys, 'eu-west-1');
  });

  afterAll(async () => {
    await gateway?.close();
    await instances?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the raw Ignition file from curl --aws-sigv4 --data @node1.ign', async () => {
    const file = join(dir, 'node1.ign');
    await writeFile(
      file,
      `${JSON.stringify({ ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'core' }] } }, null, 2)}\n`,
    );
    const put = await run('curl', [
      '--silent',
      '--show-error',
      '--aws-sigv4',
      'aws:amz:eu-west-1:execute-api',
      '--user',
      `${awsKeys.accessKeyId}:${awsKeys.secretAccessKey}`,
      '-X',
      'PUT',
      '--data',
      `@${file}`,
      '--write-out',
      '\n%{http_code}',
      `${gateway.url}/v1/instances/node1`,
    ]);
    expect(put.code, put.stderr).toBe(0);
    const [body, status] = put.stdout.split('\n');
    expect(status).toBe('201');
    const { ignitionUrl } = JSON.parse(body ?? '{}') as { ignitionUrl: string };
    expect(gateway.accepted).toHaveLength(1);
    const record = await instances.get('node1');
    expect(record?.kind).toBe('ignition');
    expect(new URL(ignitionUrl).pathname).toBe('/v1/instances/node1/ignition');
  });

  it('registers JSON lines with put-many and lists them, signing every request', async () => {
    const file = join(dir, 'fleet.jsonl');
    await writeFile(
      file,
      ['sig-1', 'sig-2']
        .map((id) => JSON.stringify({ id, ignition: { ignition: { version: '3.4.0' } } }))
        .join('\n'),
    );
    const connection = ['--api', gateway.url, '--auth', 'iam', '--region', 'eu-west-1'];
    const bin = join(projectRoot, 'bin/cldist.js');
    const many = await run(process.execPath, [bin, 'instances', 'put-many', file, ...connection]);
    expect(many.code, many.stderr).toBe(0);
    expect(
      many.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { id: string }).id),
    ).toEqual(['sig-1', 'sig-2']);
    const listed = await run(process.execPath, [bin, 'instances', 'list', '--prefix', 'sig-', ...connection]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^sig-1\tready\tignition/m);
    expect(gateway.refused).toEqual([]);
  });
});
