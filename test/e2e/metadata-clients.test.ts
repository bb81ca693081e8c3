import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';
import { type Lab, labUnavailable, startLab } from '../support/netns.ts';
import { baseIgnition, ignitionFetch, stopChild, userConfig } from '../support/netns-clients.ts';
import { ed25519PublicKey } from '../support/ssh-keys.ts';

const cli = join(projectRoot, 'bin/cldist.js');
const vms = { vm1: '169.254.10.7', vm2: '169.254.10.8', stranger: '169.254.10.9' };

/**
 * These tests must run in CI (root, CI=true) and for root anywhere: a missing tool fails them. They are
 * skipped, with the reason in the suite name, only for a non-root user outside CI.
 */
const unavailable = await labUnavailable();
const inCi = process.env.CI !== undefined && process.env.CI !== '';
if (unavailable !== undefined && (inCi || process.getuid?.() === 0)) {
  throw new Error(`the real-client metadata tests cannot run: ${unavailable}`);
}
const suite = unavailable === undefined ? describe : describe.skip;
const title =
  unavailable === undefined
    ? 'the real Ignition client against cldist serve --metadata-listen, in network namespaces'
    : `real-client metadata tests skipped: ${unavailable} (run as root to include them)`;

suite(title, () => {
  let lab: Lab;
  let dir: string;
  let serve: ChildProcess | undefined;
  const serveLog: string[] = [];

  async function cldist(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return lab.run(process.execPath, [cli, ...args, '--data-dir', join(dir, 'data')], 30_000);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-metadata-netns-'));
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9' }],
        platform: { baseIgnition },
      }),
    );
    lab = await startLab(vms);
    serve = lab.spawn(process.execPath, [
      cli,
      'serve',
      '--config',
      join(dir, 'config.json'),
      '--data-dir',
      join(dir, 'data'),
      '--port',
      '8080',
      '--metadata-listen',
      '169.254.169.254:80',
      '--log-format',
      'json',
    ]);
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: serve?.stdout as NodeJS.ReadableStream });
      lines.on('line', (line) => {
        serveLog.push(line);
        if (line.includes('"admin.token')) resolve();
      });
      serve?.once('exit', (code) => reject(new Error(`serve exited (${code}): ${serveLog.join('\n')}`)));
    });
    for (const vm of ['vm1', 'vm2'] as const) {
      await writeFile(join(dir, `${vm}.ign`), userConfig(vm));
      await writeFile(join(dir, `${vm}.pub`), `${ed25519PublicKey(`${vm}-key`)}\n`);
      const put = await cldist([
        'instances',
        'put',
        vm,
        '--ignition',
        join(dir, `${vm}.ign`),
        '--ip',
        vms[vm],
        '--hostname',
        `${vm}.example.net`,
        '--ssh-key',
        join(dir, `${vm}.pub`),
        '--zone',
        'eu-west-1a',
      ]);
      expect(put.exitCode, put.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    if (serve !== undefined) await stopChild(serve);
    await lab?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const ignition = (vm: string, platform: 'openstack' | 'aws') => ignitionFetch(lab, vm, platform, dir);

  for (const platform of ['openstack', 'aws'] as const) {
    it(`-platform=${platform}: each instance gets its own config with the base config merged in`, async () => {
      for (const vm of ['vm1', 'vm2'] as const) {
        const run = await ignition(vm, platform);
        expect(run.exitCode, run.stdout + run.stderr).toBe(0);
        expect(run.cached).toBeDefined();
        expect(run.files).toEqual(['/etc/provider/agent.conf', `/etc/${vm}.conf`].sort());
      }
    });

    it(`-platform=${platform}: an unregistered address gets no config (an empty one, not another's)`, async () => {
      const run = await ignition('stranger', platform);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(/Not Found|not found/);
      expect(run.files).toEqual([]);
    });
  }

  it('audits every fetch with the route family and the source address', async () => {
    const shown = await cldist(['instances', 'get', 'vm1']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    const audit = (JSON.parse(shown.stdout) as { audit: Record<string, string>[] }).audit;
    const served = audit.filter((entry) => entry.route === 'ignition' && entry.outcome === 'served');
    expect(served.map((entry) => entry.family).sort()).toEqual(['ec2', 'openstack']);
    expect(new Set(audit.map((entry) => entry.sourceIp))).toEqual(new Set([vms.vm1]));
    expect(served.map((entry) => entry.path).sort()).toEqual([
      '/2019-10-01/user-data',
      '/openstack/latest/user_data',
    ]);
  });

  it('lists the instances on the status page with addresses, hostname, kind and last fetch', async () => {
    const token = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const script = `const r = await fetch('http://127.0.0.1:8080/v1/status', { headers: { Authorization: 'Bearer ${token}' } });
      console.log(JSON.stringify((await r.json()).instances));`;
    const run = await lab.run(process.execPath, ['--input-type=module', '-e', script]);
    expect(run.exitCode, run.stderr).toBe(0);
    const list = JSON.parse(run.stdout) as { rows: Record<string, unknown>[]; more: boolean };
    expect(list.more).toBe(false);
    expect(list.rows).toEqual([
      expect.objectContaining({
        id: 'vm1',
        addresses: [vms.vm1],
        hostname: 'vm1.example.net',
        kind: 'ignition',
        lastFetch: expect.objectContaining({
          family: expect.stringMatching(/^(ec2|openstack)$/),
          sourceIp: vms.vm1,
        }),
      }),
      expect.objectContaining({ id: 'vm2', addresses: [vms.vm2], kind: 'ignition' }),
    ]);
  });

  /** Requests from inside a VM with whatever headers it likes, over a real socket. */
  async function fromVm(
    vm: string,
    requests: { path: string; method?: string; headers?: Record<string, string> }[],
  ) {
    const script = `
      const requests = ${JSON.stringify(requests)};
      const out = [];
      for (const r of requests) {
        const res = await fetch('http://169.254.169.254' + r.path, { method: r.method ?? 'GET', headers: r.headers ?? {} });
        out.push({ path: r.path, status: res.status, body: await res.text() });
      }
      console.log(JSON.stringify(out));`;
    const run = await lab.inVm(vm, process.execPath, ['--input-type=module', '-e', script]);
    expect(run.exitCode, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as { path: string; status: number; body: string }[];
  }

  it('ignores X-Forwarded-For, X-Instance-ID and similar headers on the listener', async () => {
    const spoof = {
      'X-Forwarded-For': vms.vm1,
      'X-Real-IP': vms.vm1,
      Forwarded: `for=${vms.vm1}`,
      'X-Instance-ID': 'vm1',
      'X-Instance-ID-Signature': 'a'.repeat(64),
    };
    const stranger = await fromVm('stranger', [
      { path: '/openstack/latest/user_data', headers: spoof },
      { path: '/latest/user-data', headers: spoof },
      { path: '/latest/meta-data/hostname', headers: spoof },
      { path: '/openstack/latest/meta_data.json', headers: spoof },
    ]);
    expect(stranger.map((r) => r.status)).toEqual([404, 404, 404, 404]);
    expect(stranger.map((r) => r.body).join('')).not.toMatch(/vm1|agent/);
    const vm2 = await fromVm('vm2', [
      { path: '/latest/meta-data/hostname', headers: spoof },
      { path: '/openstack/latest/user_data', headers: spoof },
    ]);
    expect(vm2.map((r) => r.status)).toEqual([200, 200]);
    expect(vm2[0]?.body).toBe('vm2.example.net');
    expect(vm2[1]?.body).not.toContain(Buffer.from(userConfig('vm1')).toString('base64'));
    expect(vm2[1]?.body).toContain(Buffer.from(userConfig('vm2')).toString('base64'));
  });

  it('has no admin, status, mirror or proxied routes on the listener', async () => {
    const token = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const admin = { Authorization: `Bearer ${token}` };
    const answers = await fromVm('vm1', [
      { path: '/v1/instances/vm1', headers: admin },
      { path: '/v1/instances/vm2', method: 'DELETE', headers: admin },
      { path: '/v1/status', headers: admin },
      { path: '/mirror/stable/amd64-usr/', headers: admin },
      { path: '/v1/metadata/instance-id?address=169.254.10.8', headers: admin },
      { path: '/v1/instances/vm1/ignition', headers: admin },
    ]);
    expect(answers.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
    const root = await fromVm('vm1', [{ path: '/', headers: admin }]);
    expect(root[0]?.body).not.toMatch(/cldist|status|token/i);
    const still = await cldist(['instances', 'get', 'vm2']);
    expect(still.exitCode, still.stderr).toBe(0);
  });
});
