import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../../local/admin-token.ts';
import type { RunningServer } from '../../shared/api/node-server.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { runCldist } from '../support/cli.ts';
import { type CliApi, startCliApi } from '../support/instance-api.ts';

const cldist = (args: string[]) => runCldist(args, { timeoutMs: 60_000 });

const config = { ignition: { version: '3.4.0' } };

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('cldist instances list, put-many, delete --prefix, reserve and revoke (CLI against a running API)', () => {
  let api: CliApi;
  let dir: string;
  let server: RunningServer;
  let instances: InstanceRepository;
  let connection: string[];

  beforeAll(async () => {
    api = await startCliApi('cldist-fleet-cli-');
    ({ dir, server, instances, connection } = api);
  });

  afterAll(async () => {
    await api?.close();
  });

  it('put-many prints a token line per instance and stops at a bad line, saying which; --from-line resumes', async () => {
    const file = join(dir, 'half.jsonl');
    const good = (id: string) => JSON.stringify({ id, ignition: config });
    await writeFile(
      file,
      [
        good('half-1'),
        good('half-2'),
        JSON.stringify({ id: 'half-3', ignition: { ignition: {} } }),
        good('half-4'),
      ].join('\n'),
    );
    const run = await cldist(['instances', 'put-many', file, ...connection]);
    expect(run.code).toBe(2);
    const printed = jsonLines(run.stdout);
    expect(printed.map((p) => [p.line, p.id])).toEqual([
      [1, 'half-1'],
      [2, 'half-2'],
    ]);
    expect(run.stderr).toContain('line 3 failed');
    expect(run.stderr).toContain('--from-line 3');
    for (const p of printed) {
      const served = await fetch(
        `${server.url}/v1/instances/${String(p.id)}/ignition?token=${String(p.token)}`,
      );
      expect(served.status).toBe(200);
      expect(p.ignitionUrl).toBe(
        `${server.url}/v1/instances/${String(p.id)}/ignition?token=${String(p.token)}`,
      );
    }
    expect(await instances.get('half-3')).toBeUndefined();
    expect(await instances.get('half-4')).toBeUndefined();

    await writeFile(file, [good('half-1'), good('half-2'), good('half-3'), good('half-4')].join('\n'));
    const resumed = await cldist(['instances', 'put-many', file, '--from-line', '3', ...connection]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(jsonLines(resumed.stdout).map((p) => [p.line, p.id])).toEqual([
      [3, 'half-3'],
      [4, 'half-4'],
    ]);
  });

  it('put-many sends a large file in several requests; list follows the pages; delete --prefix needs --yes', async () => {
    const file = join(dir, 'many.jsonl');
    const ids = Array.from({ length: 130 }, (_, i) => `many-${String(i).padStart(3, '0')}`);
    await writeFile(file, `${ids.map((id) => JSON.stringify({ id, ignition: config })).join('\n')}\n`);
    const run = await cldist(['instances', 'put-many', file, '--lines-per-request', '50', ...connection]);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonLines(run.stdout).map((p) => p.id)).toEqual(ids);
    expect(new Set(jsonLines(run.stdout).map((p) => p.token)).size).toBe(130);

    const listed = await cldist([
      'instances',
      'list',
      '--prefix',
      'many-',
      '--json',
      '--page-size',
      '50',
      ...connection,
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(jsonLines(listed.stdout).map((p) => p.id)).toEqual(ids);
    expect(listed.stdout).not.toMatch(/token/i);

    const asked = await cldist(['instances', 'delete', '--prefix', 'many-', ...connection]);
    expect(asked.code).toBe(2);
    expect(asked.stdout).toContain('130 instances start with "many-": many-000');
    expect(asked.stderr).toContain('--yes');
    expect(await instances.get('many-000')).toBeDefined();

    const deleted = await cldist(['instances', 'delete', '--prefix', 'many-', '--yes', ...connection]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.split('\n').filter((l) => l.startsWith('deleted '))).toHaveLength(130);
    const after = await cldist(['instances', 'list', '--prefix', 'many-', '--json', ...connection]);
    expect(after.stdout).toBe('');
    expect(await instances.get('half-1')).toBeDefined();
  });

  it('reserve prints a token that answers 503 until put keeps it; revoke ends it at once', async () => {
    const reserved = await cldist(['instances', 'reserve', 'early-1', '--for', '10m', ...connection]);
    expect(reserved.code, reserved.stderr).toBe(0);
    const token = /^token: (\S+)$/m.exec(reserved.stdout)?.[1] ?? '';
    expect(reserved.stdout).toMatch(/^reserved until: \d{4}-/m);
    const url = `${server.url}/v1/instances/early-1/ignition?token=${token}`;
    expect((await fetch(url)).status).toBe(503);

    await writeFile(join(dir, 'early.ign'), JSON.stringify(config));
    const put = await cldist([
      'instances',
      'put',
      'early-1',
      '--ignition',
      join(dir, 'early.ign'),
      ...connection,
    ]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain('token: unchanged');
    expect((await fetch(url)).status).toBe(200);

    const revoked = await cldist(['instances', 'revoke', 'early-1', ...connection]);
    expect(revoked.code, revoked.stderr).toBe(0);
    const fresh = /^token: (\S+)$/m.exec(revoked.stdout)?.[1] ?? '';
    expect(fresh).not.toBe(token);
    expect((await fetch(url)).status).toBe(404);
    expect((await fetch(`${server.url}/v1/instances/early-1/ignition?token=${fresh}`)).status).toBe(200);
  });

  it('refuses bad --for, --deadline, --prefix, --lines-per-request and JSON lines before sending anything', async () => {
    for (const args of [
      ['put-many', 'any.jsonl', '--lines-per-request', '0'],
      ['put-many', 'any.jsonl', '--lines-per-request', '5001'],
      ['reserve', 'x', '--for', '10 minutes'],
      ['reserve', 'x', '--for', '8d'],
      ['reserve', 'x', '--deadline', 'tomorrow'],
      ['list', '--prefix', '../etc'],
    ]) {
      const run = await cldist(['instances', ...args, ...connection]);
      expect(run.code, args.join(' ')).toBe(2);
    }
    const missing = await cldist(['instances', 'put-many', join(dir, 'missing.jsonl'), ...connection]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`cannot read ${join(dir, 'missing.jsonl')}`);
    const file = join(dir, 'broken.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'ok', ignition: config })}\n{"id": "no-close"\n`);
    const run = await cldist(['instances', 'put-many', file, ...connection]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('line 2');
    expect(await instances.get('ok')).toBeUndefined();
  });

  it('names the data dir and the admin token file it used when the API answers 401', async () => {
    const other = join(dir, 'other-data');
    await loadOrCreateAdminToken(other);
    const run = await cldist(['instances', 'list', '--api', server.url, '--data-dir', other]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('failed with 401');
    expect(run.stderr).toContain(`${join(other, 'admin-token')} (data dir ${other})`);
  });
});
