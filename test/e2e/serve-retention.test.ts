import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import type { StatusModel } from '../../local/status/model.ts';
import { releasePrunedSchema } from '../../shared/events.ts';
import {
  adminHeaders,
  bigArtifact,
  board,
  type Started,
  serveFor,
  simConfig,
  smallArtifact,
  tempDir,
  waitFor,
} from './serve-harness.ts';

async function publishSmall(sim: SimOrigin, version: string): Promise<void> {
  await sim.publishRelease({
    channel: 'stable',
    board,
    version,
    artifacts: [
      { name: bigArtifact, size: 4096 },
      { name: smallArtifact, size: 1024 },
    ],
  });
}

describe('cldist serve with retention (keepReleases 1) and a webhook', () => {
  let sim: SimOrigin;
  let dir: string;
  let running: Started | undefined;
  let receiver: Server;
  const delivered: { event: string; version?: string }[] = [];

  beforeAll(async () => {
    sim = await startSimOrigin();
    dir = await tempDir('serve-retention');
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        delivered.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await running?.handle.close();
    await new Promise((resolve) => receiver.close(resolve));
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes the older release once the newer one is announced, and tells the webhook', async () => {
    const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const config = await simConfig(sim, dir, ['stable'], { notifications: { webhooks: [webhook] } });
    await publishSmall(sim, '5000.0.0');
    running = await serveFor(
      { ...config, sources: config.sources.map((source) => ({ ...source, keepReleases: 1 })) },
      join(dir, 'data'),
    );
    const { handle, records } = running;
    await handle.drain();
    await publishSmall(sim, '5000.1.0');
    await handle.pollNow();
    await handle.drain();

    await waitFor(() => delivered.length >= 3, 'three webhook deliveries');
    // Deliveries run concurrently; the order of publishing is the status page's (newest first).
    expect(delivered.map((e) => `${e.event} ${e.version}`).sort()).toEqual([
      'release.mirrored 5000.0.0',
      'release.mirrored 5000.1.0',
      'release.pruned 5000.0.0',
    ]);
    const published = (await handle.status()).events.map((e) => `${e.event} ${e.version}`).reverse();
    expect(published).toEqual([
      'release.mirrored 5000.0.0',
      'release.mirrored 5000.1.0',
      'release.pruned 5000.0.0',
    ]);
    expect(releasePrunedSchema.safeParse(delivered.find((e) => e.event === 'release.pruned')).success).toBe(
      true,
    );
    expect(records.filter((r) => r.event === 'release.pruned').map((r) => r.version)).toEqual(['5000.0.0']);

    const base = `${handle.url}/mirror/stable/${board}`;
    for (const file of ['release.json', 'version.txt', bigArtifact, `${bigArtifact}.sig`]) {
      expect((await fetch(`${base}/5000.0.0/${file}`)).status, file).toBe(404);
      expect((await fetch(`${base}/5000.1.0/${file}`)).status, file).toBe(200);
    }
    expect(await (await fetch(`${base}/current/version.txt`)).text()).toContain('5000.1.0');

    const status = (await (
      await fetch(`${handle.url}/v1/status`, { headers: adminHeaders(handle) })
    ).json()) as StatusModel;
    expect(status.channels[0]?.releases.map((r) => [r.version, r.state])).toEqual([['5000.1.0', 'mirrored']]);
    const listed = (await (
      await fetch(`${handle.url}/v1/releases`, { headers: adminHeaders(handle) })
    ).json()) as { releases: { version: string }[] };
    expect(listed.releases.map((r) => r.version)).toEqual(['5000.1.0']);

    expect((await handle.pollNow()).pruned).toBe(0);
  });
});
