import { readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faults, type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import type { StatusModel } from '../../local/status/model.ts';
import { omahaCheck } from '../support/update-fixtures.ts';
import {
  adminHeaders,
  artifactGets,
  bigArtifact,
  board,
  MiB,
  publish,
  type Started,
  serveFor,
  simConfig,
  smallArtifact,
  tempDir,
  waitFor,
} from './serve-harness.ts';

async function statusOf(started: Started): Promise<StatusModel> {
  const res = await fetch(`${started.handle.url}/v1/status`, { headers: adminHeaders(started.handle) });
  expect(res.status).toBe(200);
  return (await res.json()) as StatusModel;
}

function mirrored(status: StatusModel, channel: string): string[] {
  return (
    status.channels
      .find((c) => c.channel === channel)
      ?.releases.filter((r) => r.state === 'mirrored')
      .map((r) => r.version) ?? []
  );
}

describe('cldist serve against the simulated origin', () => {
  let sim: SimOrigin;
  let dir: string;
  let dataDir: string;
  let running: Started | undefined;
  let receiver: Server;
  let webhookUrl = '';
  const delivered: Array<{ contentType: string | undefined; body: { event: string; version?: string } }> = [];

  beforeAll(async () => {
    sim = await startSimOrigin();
    dir = await tempDir('serve-e2e');
    dataDir = join(dir, 'data');
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        delivered.push({
          contentType: request.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    await running?.handle.close();
    await new Promise((resolve) => receiver.close(resolve));
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  let instanceToken = '';
  let artifactGetsBeforeRestart: string[] = [];
  const ignition = {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: '/etc/hostname', contents: { source: 'data:,web-1' } }] },
  };

  it('mirrors and verifies the first two releases, and moves current forward', async () => {
    await publish(sim, 'stable', '4081.2.0');
    const config = await simConfig(sim, dir, ['stable'], { notifications: { webhooks: [webhookUrl] } });
    running = await serveFor(config, dataDir);
    const started = running;
    await waitFor(
      async () => mirrored(await statusOf(started), 'stable').includes('4081.2.0'),
      'release 4081.2.0 mirrored',
    );

    await publish(sim, 'stable', '4081.2.1');
    await started.handle.pollNow();
    const status = await waitFor(async () => {
      const s = await statusOf(started);
      return mirrored(s, 'stable').includes('4081.2.1') && s.channels[0]?.currentMirrored === '4081.2.1' && s;
    }, 'release 4081.2.1 mirrored');

    const stable = status.channels.find((c) => c.channel === 'stable');
    expect(stable?.latestUpstream).toBe('4081.2.1');
    for (const release of stable?.releases ?? []) {
      expect(release.artifacts.map((a) => [a.name, a.state, a.signer])).toEqual([
        ['version.txt', 'verified', sim.signingKeyFingerprint],
        [bigArtifact, 'verified', sim.signingKeyFingerprint],
        [smallArtifact, 'verified', sim.signingKeyFingerprint],
      ]);
    }
    expect(stable?.releases.find((r) => r.version === '4081.2.0')?.artifacts[1]?.size).toBe(3 * MiB + 17);
    const events = status.events.filter((e) => e.event === 'release.mirrored').map((e) => e.version);
    expect(events.sort()).toEqual(['4081.2.0', '4081.2.1']);
    // The worker logs the move after its last ledger write, which can trail the status page by a moment.
    const moves = () =>
      started.records.filter((r) => r.event === 'mirror.current_moved').map((r) => r.version);
    await waitFor(() => moves().length >= 2, 'two mirror.current_moved log records');
    expect(moves()).toEqual(['4081.2.0', '4081.2.1']);
    await waitFor(() => delivered.length >= 2, 'two webhook deliveries');
    expect(delivered.map((d) => [d.contentType, d.body.event, d.body.version])).toEqual([
      ['application/json', 'release.mirrored', '4081.2.0'],
      ['application/json', 'release.mirrored', '4081.2.1'],
    ]);
  });

  it('serves the mirror in the upstream layout, with ranges and HEAD', async () => {
    const { url } = running?.handle ?? { url: '' };
    const base = `${url}/mirror/stable/${board}`;
    const current = await fetch(`${base}/current/version.txt`);
    expect(current.status).toBe(200);
    expect(await current.text()).toContain('FLATCAR_VERSION_ID=4081.2.1');

    const sig = await fetch(`${base}/4081.2.0/${bigArtifact}.sig`);
    expect(sig.status).toBe(200);
    const upstreamSig = await fetch(`${sim.url}/stable/${board}/4081.2.0/${bigArtifact}.sig`);
    expect(Buffer.from(await sig.arrayBuffer())).toEqual(Buffer.from(await upstreamSig.arrayBuffer()));

    const range = 'bytes=1048570-1048589';
    const part = await fetch(`${base}/4081.2.0/${bigArtifact}`, { headers: { Range: range } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1048570-1048589/${3 * MiB + 17}`);
    const upstreamPart = await fetch(`${sim.url}/stable/${board}/4081.2.0/${bigArtifact}`, {
      headers: { Range: range },
    });
    expect(Buffer.from(await part.arrayBuffer())).toEqual(Buffer.from(await upstreamPart.arrayBuffer()));

    const head = await fetch(`${base}/4081.2.1/${smallArtifact}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(MiB));
    expect(head.headers.get('accept-ranges')).toBe('bytes');

    const manifest = await fetch(`${base}/4081.2.1/release.json`);
    expect(manifest.status).toBe(200);
    expect(await fetch(`${base}/9999.0.0/${bigArtifact}`).then((r) => r.status)).toBe(404);
  });

  it('keeps the status and the admin API behind the admin token', async () => {
    const { url } = running?.handle ?? { url: '' };
    expect((await fetch(`${url}/v1/status`)).status).toBe(401);
    expect((await fetch(`${url}/v1/status`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(
      401,
    );
    expect((await fetch(`${url}/`)).status).toBe(401);
    const put = await fetch(`${url}/v1/instances/web-1`, { method: 'PUT', body: JSON.stringify(ignition) });
    expect(put.status).toBe(401);
  });

  it('registers an instance config and serves it to the instance with its token', async () => {
    const handle = running?.handle;
    if (handle === undefined) throw new Error('serve is not running');
    const put = await fetch(`${handle.url}/v1/instances/web-1`, {
      method: 'PUT',
      headers: { ...adminHeaders(handle), 'Content-Type': 'application/json' },
      body: JSON.stringify({ ignition }),
    });
    expect(put.status).toBe(201);
    const answer = (await put.json()) as { token: string; ignitionUrl: string };
    instanceToken = answer.token;
    expect(answer.ignitionUrl).toBe(
      `${handle.url}/v1/instances/web-1/ignition?token=${encodeURIComponent(answer.token)}`,
    );

    const fetched = await fetch(answer.ignitionUrl);
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toEqual(ignition);
    const wrong = await fetch(`${handle.url}/v1/instances/web-1/ignition`, {
      headers: { Authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(404);
  });

  it('answers update_engine at /v1/update/ and keeps the update groups behind the admin token', async () => {
    const handle = running?.handle;
    if (handle === undefined) throw new Error('serve is not running');
    const check = await fetch(`${handle.url}/v1/update/`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml' },
      body: omahaCheck({ track: 'stable', version: '4000.0.0' }),
    });
    expect(check.status).toBe(200);
    // The channel's current release is mirrored, but no update payload of it is verified yet.
    expect(await check.text()).toMatch(
      /<app appid="\{e96281a6-[^"]+\}" status="ok">.*<updatecheck status="noupdate"\/>/s,
    );
    expect((await fetch(`${handle.url}/v1/update-groups`)).status).toBe(401);
    const groups = await fetch(`${handle.url}/v1/update-groups`, { headers: adminHeaders(handle) });
    expect(await groups.json()).toEqual({ groups: [] });
    // The check-in is in the fleet view once the recorder has flushed: in full to the admin, shortened on
    // the status page.
    await handle.fleet?.recorder.flush();
    expect((await fetch(`${handle.url}/v1/fleet`)).status).toBe(401);
    const fleet = (await (
      await fetch(`${handle.url}/v1/fleet`, { headers: adminHeaders(handle) })
    ).json()) as {
      instances: { machineId: string; group: string; version: string; status: string }[];
    };
    expect(fleet.instances).toEqual([
      expect.objectContaining({
        machineId: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
        group: 'stable',
        version: '4000.0.0',
        status: 'idle',
      }),
    ]);
    const status = JSON.stringify(await handle.status());
    expect(status).toContain('0f1e2d…');
    expect(status).not.toContain('0f1e2d3c');
  });

  it('keeps releases, ledger and instance configs across a restart, and transfers nothing again', async () => {
    artifactGetsBeforeRestart = artifactGets(sim);
    expect(artifactGetsBeforeRestart.length).toBeGreaterThanOrEqual(6);
    await running?.handle.close();
    running = undefined;

    const config = await simConfig(sim, dir, ['stable']);
    running = await serveFor(config, dataDir);
    const started = running;
    const status = await statusOf(started);
    expect(mirrored(status, 'stable').sort()).toEqual(['4081.2.0', '4081.2.1']);
    expect(status.channels[0]?.currentMirrored).toBe('4081.2.1');

    const fetched = await fetch(`${started.handle.url}/v1/instances/web-1/ignition`, {
      headers: { Authorization: `Bearer ${instanceToken}` },
    });
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toEqual(ignition);

    const report = await started.handle.pollNow();
    expect(report.results.map((r) => r.outcome)).toEqual(['unchanged']);
    await started.handle.drain();
    expect(artifactGets(sim)).toEqual(artifactGetsBeforeRestart);
    const part = await fetch(`${started.handle.url}/mirror/stable/${board}/4081.2.1/${smallArtifact}`, {
      headers: { Range: 'bytes=-10' },
    });
    expect(part.status).toBe(206);
    expect((await part.arrayBuffer()).byteLength).toBe(10);
  });

  it('refuses a second runner on the same data dir while the first runs', async () => {
    const config = await simConfig(sim, dir, ['stable']);
    await expect(serveFor(config, dataDir)).rejects.toThrow(
      new RegExp(`data dir ${dataDir} is in use by another cldist serve \\(pid ${process.pid}\\)`),
    );
    const still = await fetch(`${running?.handle.url}/v1/status`, {
      headers: adminHeaders(running?.handle ?? { adminToken: '' }),
    });
    expect(still.status).toBe(200);
  });

  it('aborts a running transfer on shutdown, shows nothing of it, and finishes it after a restart', async () => {
    await running?.handle.close();
    running = undefined;
    const stalled = sim.inject(`/stable/${board}/4081.2.2/${bigArtifact}$`, faults.stallAfter(MiB), {
      times: 1,
    });
    await publish(sim, 'stable', '4081.2.2');
    const config = await simConfig(sim, dir, ['stable'], { limits: { requestTimeoutSeconds: 2 } });
    running = await serveFor(config, dataDir, { shutdownGraceMs: 10_000 });
    const first = running;
    await waitFor(
      () => stalled.applied === 1 && first.handle.status().then((s) => s.worker.inFlight > 0),
      'the stalled transfer',
    );
    await first.handle.close();
    running = undefined;
    expect(first.records.some((r) => r.event === 'shutdown.done')).toBe(true);
    expect(await first.handle.store.head(`stable/${board}/4081.2.2/${bigArtifact}`)).toBeUndefined();
    expect(await readdir(join(dataDir, 'mirror', '.staging')).catch(() => [])).toEqual([]);

    running = await serveFor(config, dataDir);
    const second = running;
    expect(second.records.some((r) => r.event === 'poll.resent_unfinished')).toBe(true);
    await waitFor(
      async () => mirrored(await statusOf(second), 'stable').includes('4081.2.2'),
      'release 4081.2.2 mirrored',
    );
    expect(await second.handle.store.head(`stable/${board}/4081.2.2/${bigArtifact}`)).toMatchObject({
      size: 3 * MiB + 17,
    });
  });
});

describe('cldist serve with an unreachable origin', () => {
  it('says so once per channel per poll, with the URL and the cause, and keeps serving', async () => {
    const dir = await tempDir('serve-offline');
    try {
      const sim = await startSimOrigin();
      const keyOnly = await simConfig(sim, dir, ['stable', 'beta']);
      await sim.close();
      const config = {
        ...keyOnly,
        sources: keyOnly.sources.map((s) => ({
          ...s,
          channels: s.channels.map((c) => ({ ...c, baseUrl: 'http://127.0.0.1:9/{channel}' })),
        })),
      };
      const started = await serveFor(config, join(dir, 'data'));
      try {
        await started.handle.pollNow();
        const unreachable = started.records.filter((r) => r.event === 'poll.origin_unreachable');
        expect(unreachable.map((r) => r.channel).sort()).toEqual(['beta', 'beta', 'stable', 'stable']);
        expect(unreachable[0]).toMatchObject({
          level: 'warn',
          url: expect.stringMatching(
            /^http:\/\/127\.0\.0\.1:9\/(stable|beta)\/amd64-usr\/current\/version\.txt$/,
          ),
        });
        expect(String(unreachable[0]?.cause)).toMatch(/ECONNREFUSED/);
        expect(started.records.filter((r) => r.level === 'error')).toEqual([]);
        const status = await statusOf(started);
        expect(status.channels.map((c) => c.pollError?.url)).toEqual([
          `http://127.0.0.1:9/stable/${board}/current/version.txt`,
          `http://127.0.0.1:9/beta/${board}/current/version.txt`,
        ]);
      } finally {
        await started.handle.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
