import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';
import { signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import { type Lab, labUnavailable, startLab } from '../support/netns.ts';
import { baseIgnition, ignitionFetch, stopChild, userConfig } from '../support/netns-clients.ts';

const cli = join(projectRoot, 'bin/cldist.js');
const vms = { vm1: '169.254.20.7', vm2: '169.254.20.8', stranger: '169.254.20.9' };
const secret = 'netns-proxy-secret-0123456789abcdef0123';
const wrongSecret = 'netns-wrong-secret-0123456789abcdef0123';

/** In CI (root, CI=true) these must run; elsewhere they are skipped, with the reason, only when not root. */
const unavailable = await labUnavailable();
if (unavailable !== undefined && process.env.CI !== undefined && process.env.CI !== '') {
  throw new Error(`the metadata proxy namespace tests cannot run in CI: ${unavailable}`);
}
const suite = unavailable === undefined ? describe : describe.skip;
const title =
  unavailable === undefined
    ? 'cldist metadata-proxy between instances and cldist serve, in network namespaces'
    : `metadata proxy namespace tests skipped: ${unavailable} (run as root to include them)`;

suite(title, () => {
  let lab: Lab;
  let dir: string;
  const children: ChildProcess[] = [];
  const logs = new Map<ChildProcess, string[]>();

  /** Starts a long-running cldist command in the lab and waits for the first log event named `readyEvent…`. */
  async function start(args: string[], readyEvent: string): Promise<ChildProcess> {
    const child = lab.spawn(process.execPath, [cli, ...args, '--log-format', 'json']);
    children.push(child);
    const lines: string[] = [];
    logs.set(child, lines);
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        lines.push(line);
        if (line.includes(`"event":"${readyEvent}`)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`${args[0]} exited (${code}): ${lines.join('\n')}`)));
    });
    return child;
  }

  const stop = stopChild;

  async function cldist(args: string[]) {
    return lab.run(process.execPath, [cli, ...args, '--data-dir', join(dir, 'data')], 30_000);
  }

  let serve: ChildProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-proxy-netns-'));
    await writeFile(join(dir, 'api.secrets'), `${secret}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'proxy.secret'), `${secret}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'wrong.secret'), `${wrongSecret}\n`, { mode: 0o600 });
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9' }],
        platform: { baseIgnition },
        metadata: { proxySecretFile: join(dir, 'api.secrets') },
      }),
    );
    lab = await startLab(vms);
    serve = await start(
      ['serve', '--config', join(dir, 'config.json'), '--data-dir', join(dir, 'data'), '--port', '8080'],
      'admin.token',
    );
    await start(
      [
        'metadata-proxy',
        '--listen',
        '169.254.169.254:80',
        '--api',
        'http://127.0.0.1:8080',
        '--secret-file',
        join(dir, 'proxy.secret'),
      ],
      'proxy.listening',
    );
    await start(
      [
        'metadata-proxy',
        '--listen',
        '169.254.169.254:81',
        '--api',
        'http://127.0.0.1:8080',
        '--secret-file',
        join(dir, 'wrong.secret'),
      ],
      'proxy.listening',
    );
    for (const vm of ['vm1', 'vm2'] as const) {
      await writeFile(join(dir, `${vm}.ign`), userConfig(vm));
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
      ]);
      expect(put.exitCode, put.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    for (const child of children) await stop(child);
    await lab?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const ignition = (vm: string, platform: 'openstack' | 'aws') => ignitionFetch(lab, vm, platform, dir);

  async function fromVm(
    vm: string,
    requests: { path: string; port?: number; method?: string; headers?: Record<string, string> }[],
  ) {
    const script = `
      const out = [];
      for (const r of ${JSON.stringify(requests)}) {
        const res = await fetch('http://169.254.169.254:' + (r.port ?? 80) + r.path, { method: r.method ?? 'GET', headers: r.headers ?? {} });
        out.push({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() });
      }
      console.log(JSON.stringify(out));`;
    const run = await lab.inVm(vm, process.execPath, ['--input-type=module', '-e', script]);
    expect(run.exitCode, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as { status: number; retryAfter: string | null; body: string }[];
  }

  for (const platform of ['openstack', 'aws'] as const) {
    it(`the real Ignition client (-platform=${platform}) gets each instance its own config through the proxy`, async () => {
      for (const vm of ['vm1', 'vm2'] as const) {
        const run = await ignition(vm, platform);
        expect(run.exitCode, run.stdout + run.stderr).toBe(0);
        expect(run.files).toEqual(['/etc/provider/agent.conf', `/etc/${vm}.conf`].sort());
      }
      const stranger = await ignition('stranger', platform);
      expect(stranger.exitCode, stranger.stdout + stranger.stderr).toBe(0);
      expect(stranger.files).toEqual([]);
    });
  }

  it('audits proxied fetches under the proxy route family, with the instance’s address', async () => {
    const shown = await cldist(['instances', 'get', 'vm1']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    const audit = (JSON.parse(shown.stdout) as { audit: Record<string, string>[] }).audit;
    const served = audit.filter((entry) => entry.route === 'ignition' && entry.outcome === 'served');
    expect(served.length).toBeGreaterThan(0);
    expect(new Set(served.map((entry) => entry.family))).toEqual(new Set(['proxy']));
    // The instance's address, which the proxy signs, not the proxy's own.
    expect(new Set(served.map((entry) => entry.sourceIp))).toEqual(new Set([vms.vm1]));
  });

  it('never yields another instance’s data to forged identity headers, even a correctly signed X-Instance-ID', async () => {
    const forged = {
      'X-Instance-ID': 'vm1',
      'X-Instance-ID-Signature': signInstanceId(secret, 'vm1'),
      'X-Instance-Address': vms.vm1,
      'X-Forwarded-For': vms.vm1,
      Forwarded: `for=${vms.vm1}`,
    };
    const stranger = await fromVm('stranger', [
      { path: '/openstack/latest/user_data', headers: forged },
      { path: '/latest/meta-data/hostname', headers: forged },
    ]);
    expect(stranger.map((r) => r.status)).toEqual([404, 404]);
    expect(stranger.map((r) => r.body).join('')).not.toMatch(/vm1|agent/);
    const vm2 = await fromVm('vm2', [{ path: '/latest/meta-data/hostname', headers: forged }]);
    expect(vm2.map((r) => [r.status, r.body])).toEqual([[200, 'vm2.example.net']]);
    const token = await fromVm('vm2', [
      {
        path: '/latest/api/token',
        method: 'PUT',
        headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': vms.vm1 },
      },
    ]);
    expect(token.map((r) => r.status)).toEqual([403]);
  });

  it('a proxy with the wrong secret gets nothing: 502 with Retry-After', async () => {
    const answers = await fromVm('vm1', [
      { path: '/openstack/latest/user_data', port: 81 },
      { path: '/latest/meta-data/hostname', port: 81 },
    ]);
    expect(answers.map((r) => [r.status, r.retryAfter])).toEqual([
      [502, '5'],
      [502, '5'],
    ]);
    expect(answers.map((r) => r.body).join('')).not.toMatch(/vm1|agent/);
  });

  it('answers 503 with Retry-After while the API is down', async () => {
    await stop(serve);
    const answers = await fromVm('vm2', [{ path: '/openstack/latest/meta_data.json' }]);
    expect(answers.map((r) => [r.status, r.retryAfter])).toEqual([[503, '5']]);
  });
});
